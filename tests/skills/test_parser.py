"""SKILL.md parsing: every real corpus file parses, and each auto-fix is a warning on the skill."""

from __future__ import annotations

import pytest

from atom.errors import InvalidInput
from atom.skills.parser import parse_skill_md
from tests.skills.corpus import corpus_dir


def _codes(folder: str) -> set[str]:
    path = corpus_dir() / folder / "SKILL.md"
    return {w.code for w in parse_skill_md(path.read_bytes(), folder_name=folder).warnings}


def test_every_corpus_file_parses_with_a_name_and_description() -> None:
    files = sorted(corpus_dir().glob("*/SKILL.md"))
    assert len(files) == 228
    for path in files:
        parsed = parse_skill_md(path.read_bytes(), folder_name=path.parent.name)
        assert parsed.name and len(parsed.name) <= 64, path
        assert parsed.description, path
        assert parsed.body is not None


def test_known_messy_files_carry_their_warnings() -> None:
    # Byte-order mark, no front matter: name from the folder, description from the first paragraph.
    assert {"bom_removed", "no_front_matter", "name_from_folder", "description_from_body"} <= _codes(
        "polymarket-traiding-bot"
    )
    # CRLF line endings.
    crlf = [p.parent.name for p in corpus_dir().glob("*/SKILL.md") if b"\r\n" in p.read_bytes()]
    assert crlf and all("line_endings_normalized" in _codes(folder) for folder in crlf)
    # An unquoted `: ` in a description breaks the YAML; it is quoted and said so.
    assert "yaml_unquoted_colon_quoted" in _codes("dokku")
    # The legacy `clawdbot` namespace of metadata.openclaw.
    assert "metadata_legacy_namespace" in _codes("apple-notes")
    # A display name that is not a slug.
    assert "name_normalized" in _codes("agent-wallet")


def test_polymarket_description_comes_from_its_first_paragraph() -> None:
    path = corpus_dir() / "polymarket-traiding-bot" / "SKILL.md"
    parsed = parse_skill_md(path.read_bytes(), folder_name="polymarket-traiding-bot")
    assert parsed.name == "polymarket-traiding-bot"
    assert parsed.description.startswith("Decentralized prediction market platform.")


def test_openclaw_metadata_as_single_line_json_is_read() -> None:
    path = corpus_dir() / "youtube-thumbnail-grabber" / "SKILL.md"
    manifest = parse_skill_md(path.read_bytes(), folder_name="x").manifest
    assert manifest.namespace == "openclaw"
    assert manifest.requires.bins == ["yt-dlp"]
    assert manifest.install[0]["kind"] == "pip" and manifest.install[0]["package"] == "yt-dlp"


def test_both_dialects_and_older_atom_fields() -> None:
    text = (
        "---\nname: pdf-tools\ndescription: Work with PDFs.\nlicense: MIT\ncompatibility: python3\n"
        "allowed-tools: Bash Read\nhomepage: https://example.org\nuser-invocable: 'true'\nversion: 1.2\n"
        "packages: [pypdf]\nnode_packages: [pdfjs]\ntype: python\n"
        'metadata: {"moltbot": {"emoji": "x", "requires": {"bins": ["qpdf",], "env": ["PDF_KEY"]},'
        ' "primaryEnv": "PDF_KEY", "os": ["linux"], "always": true,},}\n---\n# PDF\n\nBody.\n'
    )
    parsed = parse_skill_md(text, folder_name="ignored")
    m = parsed.manifest
    assert (m.name, m.description, m.license, m.compatibility) == ("pdf-tools", "Work with PDFs.", "MIT", "python3")
    assert m.allowed_tools == ["Bash", "Read"] and m.user_invocable is True and m.version == "1.2"
    assert m.packages == ["pypdf"] and m.node_packages == ["pdfjs"] and m.skill_type == "python"
    assert m.namespace == "moltbot" and m.requires.bins == ["qpdf"] and m.requires.env == ["PDF_KEY"]
    assert m.primary_env == "PDF_KEY" and m.os == ["linux"] and m.always is True
    codes = {w.code for w in parsed.warnings}
    assert {"split_to_list", "coerced_to_bool", "coerced_to_text", "metadata_legacy_namespace"} <= codes


def test_json5_metadata_string_is_decoded_with_a_warning() -> None:
    text = '---\nname: a\ndescription: b\nmetadata: \'{openclaw: {emoji: "x", /* c */ os: ["linux",],},}\'\n---\n'
    parsed = parse_skill_md(text, folder_name="a")
    assert parsed.manifest.os == ["linux"]
    assert "json5_in_yaml" in {w.code for w in parsed.warnings}


def test_yaml_that_cannot_be_repaired_falls_back_to_lines() -> None:
    parsed = parse_skill_md("---\nname: ok\ndescription: [unclosed\n  - : x\n---\nBody text.\n", folder_name="f")
    assert parsed.name == "ok"
    assert "yaml_unparseable" in {w.code for w in parsed.warnings}


def test_code_blocks_carry_language_and_line() -> None:
    parsed = parse_skill_md("---\nname: a\ndescription: b\n---\n\n```python\nprint(1)\n```\n", folder_name="a")
    assert [(b.language, b.code, b.line) for b in parsed.code_blocks] == [("python", "print(1)", 7)]


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"\x7fELF\x02\x01\x01\x00\x00\x00", "SKILL_BINARY"), (b"---\nname: \xff\xfe\n---\n", "SKILL_NOT_UTF8")],
)
def test_binary_or_non_utf8_skill_md_is_refused(raw: bytes, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_skill_md(raw, folder_name="x")
    assert caught.value.code == code
