"""The numbered, flagged lines of a skill's files: numbering as the scanner's, long files cut to windows."""

from __future__ import annotations

from atom.web import source_view


def _finding(file: str, line: int | None, severity: str = "critical") -> dict[str, object]:
    return {"rule": "r", "severity": severity, "file": file, "line": line, "excerpt": "", "message": "m"}


def test_lines_are_numbered_like_the_scanner_and_findings_point_at_them() -> None:
    skill_md = "\ufeffone\r\ntwo\rthree\n"  # the parser drops the BOM and makes CRLF and CR into LF
    files = {"scripts/a.sh": "x\r\ny\n", "z.py": "only\n"}
    findings = [_finding("SKILL.md", 3), _finding("scripts/a.sh", 2, "low"), _finding("SKILL.md#install[0]", None)]
    sources, views = source_view.build(skill_md, files, findings)
    assert [s.path for s in sources] == ["SKILL.md", "scripts/a.sh", "z.py"]
    md = sources[0]
    assert [(line.number, line.text) for line in md.blocks[0]] == [(1, "one"), (2, "two"), (3, "three")]
    assert md.blocks[0][2].findings == [1] and md.blocks[0][2].severity == "critical"
    assert sources[1].blocks[0][1].text == "y" and sources[1].blocks[0][1].findings == [2]
    assert [v.target for v in views] == ["#finding-1", "#finding-2", None]


def test_a_long_file_shows_the_flagged_lines_with_their_context_only() -> None:
    text = "\n".join(f"line {n}" for n in range(1, 5001))
    sources, views = source_view.build("a\n", {"big.py": text}, [_finding("big.py", 4000)])
    big = next(s for s in sources if s.path == "big.py")
    assert not big.complete and big.total_lines == 5000
    numbers = [line.number for line in big.blocks[0]]
    assert numbers == list(range(4000 - source_view.CONTEXT, 4000 + source_view.CONTEXT + 1))
    assert views[0].target == "#finding-1"
    beyond = source_view.build("a\n", {}, [_finding("SKILL.md", 7), _finding("gone.py", 1)])[1]
    assert [v.target for v in beyond] == [None, None]  # no such line or file: listed, not linked
