"""Importing from a folder, a zip or a tree: bundled files, limits, zip bombs and traversal refused."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from atom.errors import AtomError
from atom.skills import bundle
from tests.skills.corpus import corpus_dir

SKILL = b"---\nname: demo\ndescription: A demo skill.\n---\n# Demo\n\nRun scripts/run.py.\n"


def _zip(entries: dict[str, bytes], *, symlink: str | None = None, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo("demo/link")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, symlink)
    return buffer.getvalue()


def _refused(call: object, code: str) -> None:
    with pytest.raises(AtomError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code == code, caught.value.message


def test_folder_with_bundled_files(tmp_path: Path) -> None:
    skill = tmp_path / "demo"
    (skill / "scripts").mkdir(parents=True)
    (skill / "references").mkdir()
    (skill / "SKILL.md").write_bytes(SKILL)
    (skill / "scripts" / "run.py").write_text("print('hi')\n")
    (skill / "references" / "notes.md").write_text("notes\n")
    (skill / "assets").mkdir()
    (skill / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    [found] = bundle.read_source(skill)
    assert found.parsed.name == "demo"
    assert found.files == {"scripts/run.py": "print('hi')\n", "references/notes.md": "notes\n"}
    assert found.skipped == ["assets/logo.png"]
    assert "binary_file_skipped" in {w.code for w in found.warnings}
    before = found.content_hash
    (skill / "scripts" / "run.py").write_text("print('changed')\n")
    assert bundle.read_source(skill)[0].content_hash != before


def test_tree_discovery_goes_six_levels_down_and_no_further(tmp_path: Path) -> None:
    six = tmp_path / "a" / "b" / "c" / "d" / "e" / "six"
    seven = tmp_path / "a" / "b" / "c" / "d" / "e" / "f" / "seven"
    for folder in (six, seven):
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(f"---\nname: {folder.name}\ndescription: d\n---\n")
    assert [b.parsed.name for b in bundle.read_source(tmp_path)] == ["six"]


def test_the_whole_corpus_reads_as_a_tree() -> None:
    found = bundle.read_source(corpus_dir())
    assert len(found) == 228


def test_zip_with_one_skill_in_a_folder() -> None:
    data = _zip({"demo/SKILL.md": SKILL, "demo/scripts/run.sh": b"echo hi\n"})
    [found] = bundle.read_zip(data, name="demo.zip")
    assert found.parsed.name == "demo" and found.files == {"scripts/run.sh": "echo hi\n"}


@pytest.mark.parametrize("member", ["../evil/SKILL.md", "/etc/SKILL.md", "demo/../../x.txt", "C:/x/SKILL.md"])
def test_zip_path_traversal_is_refused(member: str) -> None:
    data = _zip({"demo/SKILL.md": SKILL, member: b"x"})
    _refused(lambda: bundle.read_zip(data), "SKILL_PATH_TRAVERSAL")


def test_zip_symlink_entry_is_refused() -> None:
    _refused(lambda: bundle.read_zip(_zip({"demo/SKILL.md": SKILL}, symlink="/etc/shadow")), "SKILL_SYMLINK")


def test_zip_bomb_is_refused_without_expanding_it() -> None:
    # 100 MB of zeros compresses to ~100 KB; the header claims the real size, so fail at the header...
    data = _zip({"demo/SKILL.md": SKILL, "demo/bomb.txt": b"0" * (100 * 1024 * 1024)})
    _refused(lambda: bundle.read_zip(data), "SKILL_FILE_TOO_LARGE")
    # A highly compressible entry under the size limit is still a bomb by its ratio.
    _refused(lambda: bundle.read_zip(_zip({"demo/SKILL.md": SKILL, "demo/z.txt": b"0" * 900_000})), "SKILL_ZIP_BOMB")
    # A header that lies about the size never expands past what it claims: reading stops and fails.
    _refused(lambda: bundle.read_zip(_zip_with_lying_size()), "SKILL_ARCHIVE_INVALID")


def _zip_with_lying_size() -> bytes:
    data = bytearray(_zip({"demo/SKILL.md": SKILL, "demo/bomb.txt": b"0" * (4 * 1024 * 1024)}))
    # Rewrite the uncompressed size in every header of bomb.txt to 10 bytes.
    name = b"demo/bomb.txt"
    start = 0
    while (index := data.find(name, start)) != -1:
        start = index + 1
        local = data.rfind(b"PK\x03\x04", 0, index)
        central = data.rfind(b"PK\x01\x02", 0, index)
        if central != -1 and index - central == 46:
            data[central + 24 : central + 28] = (10).to_bytes(4, "little")
        elif local != -1 and index - local == 30:
            data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    return bytes(data)


def test_limits_on_files_and_sizes(tmp_path: Path) -> None:
    many = {"demo/SKILL.md": SKILL, **{f"demo/references/{i}.md": b"x" for i in range(bundle.MAX_FILES)}}
    _refused(lambda: bundle.read_zip(_zip(many)), "SKILL_TOO_MANY_FILES")
    big = tmp_path / "big"
    big.mkdir()
    (big / "SKILL.md").write_bytes(SKILL)
    (big / "huge.md").write_bytes(b"x" * (bundle.MAX_FILE_BYTES + 1))
    _refused(lambda: bundle.read_source(big), "SKILL_FILE_TOO_LARGE")
    total = {"demo/SKILL.md": SKILL, **{f"demo/r/{i}.md": b"y" * (1024 * 1024 - 10) for i in range(9)}}
    _refused(lambda: bundle.read_zip(_zip(total, method=zipfile.ZIP_STORED)), "SKILL_TOO_LARGE")


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    skill = tmp_path / "demo"
    skill.mkdir()
    (skill / "SKILL.md").write_bytes(SKILL)
    (skill / "shadow").symlink_to("/etc/shadow")
    _refused(lambda: bundle.read_source(skill), "SKILL_SYMLINK")


def test_no_skill_md_and_not_a_zip_are_clear_errors(tmp_path: Path) -> None:
    _refused(lambda: bundle.read_source(tmp_path), "SKILL_MD_MISSING")
    _refused(lambda: bundle.read_zip(b"not a zip"), "SKILL_ARCHIVE_INVALID")
