"""Skill bundles from a folder, a zip archive or a tree: SKILL.md plus its bundled text files.

Everything is read into memory and checked before anything is stored, so a bundle that breaks a
limit is refused whole (`InvalidInput`/`PayloadTooLarge`), never half-imported. Archives are read
entry by entry with a byte cap, so declared sizes are never trusted: zip bombs, `../` paths,
absolute paths and symlink entries are refused. Folders are walked without following symlinks;
a symlink that leaves the skill's folder is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from atom.errors import InvalidInput, PayloadTooLarge
from atom.skills.manifest import ParseWarning
from atom.skills.parser import ParsedSkill, parse_skill_md

SKILL_FILE = "SKILL.md"
MAX_FILES = 256
MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 6  # SKILL.md discovery depth below the root of a tree
MAX_ARCHIVE_ENTRIES = 4096
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024  # compressed size of an uploaded archive
MAX_RATIO = 100  # uncompressed/compressed beyond which a large entry is a zip bomb
MAX_SKILLS = 1000
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv"})


@dataclass
class SkillBundle:
    parsed: ParsedSkill
    skill_md: bytes
    files: dict[str, str]  # bundled text files: relative POSIX path -> text
    skipped: list[str] = field(default_factory=list)  # binary files seen and not imported
    source: str = ""  # where it came from (folder path or archive member), for messages

    @property
    def warnings(self) -> list[ParseWarning]:
        return self.parsed.warnings

    @property
    def content_hash(self) -> str:
        return content_hash(self.skill_md, self.files)


def content_hash(skill_md: bytes, files: dict[str, str]) -> str:
    """SHA-256 over SKILL.md and every bundled file (path and content): a version's identity."""
    digest = hashlib.sha256()
    for path, data in sorted([(SKILL_FILE, skill_md), *((p, t.encode()) for p, t in files.items())]):
        digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def _is_text(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def safe_relative(name: str) -> PurePosixPath:
    """An archive or folder member path, refused if absolute or climbing out with `..`."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if normalized.startswith("/") or (path.parts and ":" in path.parts[0]) or ".." in path.parts:
        raise InvalidInput(f"Path {name!r:.200} escapes the skill folder.", code="SKILL_PATH_TRAVERSAL")
    return path


def build_bundle(folder_name: str, members: dict[str, bytes], source: str) -> SkillBundle:
    """One skill from its folder's members (relative path -> bytes; SKILL.md among them)."""
    skill_md = members.get(SKILL_FILE)
    if skill_md is None:
        raise InvalidInput(f"No {SKILL_FILE} in {source!r:.200}.", code="SKILL_MD_MISSING")
    others = {p: d for p, d in members.items() if p != SKILL_FILE}
    if len(others) + 1 > MAX_FILES:
        raise PayloadTooLarge(
            f"{source!r:.200} has {len(others) + 1} files; the limit is {MAX_FILES}.", code="SKILL_TOO_MANY_FILES"
        )
    total = 0
    for path, data in members.items():
        if len(data) > MAX_FILE_BYTES:
            raise PayloadTooLarge(
                f"{path!r:.200} is {len(data)} bytes; the limit is {MAX_FILE_BYTES}.", code="SKILL_FILE_TOO_LARGE"
            )
        total += len(data)
    if total > MAX_TOTAL_BYTES:
        raise PayloadTooLarge(
            f"{source!r:.200} holds {total} bytes; the limit is {MAX_TOTAL_BYTES}.", code="SKILL_TOO_LARGE"
        )
    parsed = parse_skill_md(skill_md, folder_name=folder_name)
    files: dict[str, str] = {}
    skipped: list[str] = []
    for path, data in sorted(others.items()):
        if _is_text(data):
            files[path] = data.decode("utf-8")
        else:
            skipped.append(path)
            parsed.warnings.append(ParseWarning("binary_file_skipped", f"{path!r:.200} is not text; not imported."))
    return SkillBundle(parsed=parsed, skill_md=skill_md, files=files, skipped=skipped, source=source)


def _group_by_skill(members: dict[str, bytes], root_name: str, source: str) -> list[SkillBundle]:
    """Split a tree's members into skills: each folder holding a SKILL.md (at most MAX_DEPTH down)."""
    roots = sorted(
        {str(PurePosixPath(p).parent) for p in members if PurePosixPath(p).name == SKILL_FILE},
        key=lambda r: (r.count("/"), r),
    )
    roots = [r for r in roots if (0 if r == "." else r.count("/") + 1) <= MAX_DEPTH]
    if not roots:
        raise InvalidInput(
            f"No {SKILL_FILE} found in {source!r:.200} (searched {MAX_DEPTH} levels).", code="SKILL_MD_MISSING"
        )
    if len(roots) > MAX_SKILLS:
        raise PayloadTooLarge(f"{len(roots)} skills in one import; the limit is {MAX_SKILLS}.", code="SKILL_TOO_MANY")
    bundles: list[SkillBundle] = []
    for root in roots:
        prefix = "" if root == "." else root + "/"
        # A nested skill's files belong to the nested skill, not to its parent.
        nested = [r + "/" for r in roots if r != root and (prefix == "" or r.startswith(prefix))]
        own = {
            p[len(prefix) :]: d
            for p, d in members.items()
            if p.startswith(prefix) and not any(p.startswith(n) for n in nested if n != "./")
        }
        folder = root_name if root == "." else PurePosixPath(root).name
        bundles.append(build_bundle(folder, own, f"{source}/{root}" if root != "." else source))
    return bundles


def read_folder(path: Path) -> list[SkillBundle]:
    """Every skill in a folder (the folder itself, or a tree of skill folders)."""
    root = path.resolve()
    if not root.is_dir():
        raise InvalidInput(f"{str(path)!r:.200} is not a folder.", code="SKILL_SOURCE_INVALID")
    members: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        depth = len(here.relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and depth < MAX_DEPTH)
        for d in list(dirnames):
            if (here / d).is_symlink():
                _check_link(here / d, root)
                dirnames.remove(d)
        for name in sorted(filenames):
            file = here / name
            rel = file.relative_to(root).as_posix()
            if file.is_symlink():
                _check_link(file, root)
                continue
            size = file.stat().st_size
            if size > MAX_FILE_BYTES:
                raise PayloadTooLarge(
                    f"{rel!r:.200} is {size} bytes; the limit is {MAX_FILE_BYTES}.", code="SKILL_FILE_TOO_LARGE"
                )
            total += size
            if total > MAX_TOTAL_BYTES * MAX_SKILLS or len(members) >= MAX_FILES * MAX_SKILLS:
                raise PayloadTooLarge("The folder holds more than one import may read.", code="SKILL_TOO_LARGE")
            members[rel] = file.read_bytes()
    return _group_by_skill(members, root.name, str(path))


def _check_link(link: Path, root: Path) -> None:
    target = link.resolve()
    if target != root and root not in target.parents:
        raise InvalidInput(
            f"{link.relative_to(root).as_posix()!r:.200} is a symlink out of the skill folder.", code="SKILL_SYMLINK"
        )


def read_zip(data: bytes, *, name: str = "archive") -> list[SkillBundle]:
    """Every skill in a zip archive, checked entry by entry before any is accepted."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise PayloadTooLarge(
            f"The archive is {len(data)} bytes; the limit is {MAX_ARCHIVE_BYTES}.", code="SKILL_ARCHIVE_TOO_LARGE"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidInput(f"Not a readable zip archive: {exc}.", code="SKILL_ARCHIVE_INVALID") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ARCHIVE_ENTRIES:
            raise PayloadTooLarge(
                f"The archive has {len(infos)} entries; the limit is {MAX_ARCHIVE_ENTRIES}.",
                code="SKILL_ARCHIVE_TOO_LARGE",
            )
        members: dict[str, bytes] = {}
        total = 0
        for info in infos:
            path = safe_relative(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise InvalidInput(
                    f"{info.filename!r:.200} is a symlink; archives may not hold links.", code="SKILL_SYMLINK"
                )
            if info.is_dir() or any(part in _SKIP_DIRS for part in path.parts):
                continue
            if info.flag_bits & 0x1:
                raise InvalidInput(f"{info.filename!r:.200} is encrypted.", code="SKILL_ARCHIVE_ENCRYPTED")
            if info.file_size > MAX_FILE_BYTES:
                raise PayloadTooLarge(
                    f"{info.filename!r:.200} is {info.file_size} bytes uncompressed; the limit is {MAX_FILE_BYTES}.",
                    code="SKILL_FILE_TOO_LARGE",
                )
            content = _read_capped(archive, info)
            total += len(content)
            if total > MAX_TOTAL_BYTES * 4:
                raise PayloadTooLarge("The archive expands past the import limit (zip bomb?).", code="SKILL_ZIP_BOMB")
            members[path.as_posix()] = content
    stem = PurePosixPath(name).stem or "archive"
    return _group_by_skill(members, stem, name)


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, NotImplementedError) as exc:
        raise InvalidInput(f"{info.filename!r:.200} cannot be read: {exc}.", code="SKILL_ARCHIVE_INVALID") from exc
    if len(content) > MAX_FILE_BYTES:
        raise PayloadTooLarge(
            f"{info.filename!r:.200} expands past {MAX_FILE_BYTES} bytes (zip bomb?).", code="SKILL_ZIP_BOMB"
        )
    if info.compress_size and len(content) > 64 * 1024 and len(content) / info.compress_size > MAX_RATIO:
        raise PayloadTooLarge(
            f"{info.filename!r:.200} compresses {len(content) // info.compress_size}:1 (zip bomb).",
            code="SKILL_ZIP_BOMB",
        )
    return content


def read_source(path: Path) -> list[SkillBundle]:
    """A folder or a .zip file on disk."""
    if path.is_dir():
        return read_folder(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        size = path.stat().st_size
        if size > MAX_ARCHIVE_BYTES:
            raise PayloadTooLarge(
                f"The archive is {size} bytes; the limit is {MAX_ARCHIVE_BYTES}.", code="SKILL_ARCHIVE_TOO_LARGE"
            )
        return read_zip(path.read_bytes(), name=path.name)
    if path.is_file() and path.name == SKILL_FILE:
        return read_folder(path.parent)
    raise InvalidInput(f"{str(path)!r:.200} is not a folder, a .zip or a SKILL.md.", code="SKILL_SOURCE_INVALID")
