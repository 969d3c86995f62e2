"""What every server and worker process does at start (check its configuration), and owner-only files
and directories."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from atom.config import Settings
from atom.errors import ConfigurationError

if TYPE_CHECKING:
    from atom.db.session import Database


async def check_startup(db: Database, settings: Settings) -> None:
    """Fail fast with one clear line instead of serving errors."""
    # Imported here: the CLI's `status` and `stop` use this module's file helpers and need neither
    # the migrations (alembic) nor the cipher (cryptography), about 0.4 s of imports.
    from atom.db import migrate
    from atom.security.secrets_store import load_cipher

    load_cipher(settings)  # a wrong ATOM_SECRET_KEY or key file would otherwise surface at the first secret
    try:
        await db.ping()
    except Exception as exc:
        raise ConfigurationError(
            f"cannot reach the database ({type(exc).__name__}).",
            setting="ATOM_DATABASE_URL",
            fix="check the URL and that the server is running, or unset it to use SQLite in ATOM_DATA_DIR.",
        ) from exc
    if not await migrate.is_at_head(db):
        raise ConfigurationError(
            "the database schema is not at the latest migration.",
            setting="ATOM_DATABASE_URL",
            fix="run `atom-os init` (new install) or `atom-os db upgrade`.",
        )


def private_dir(path: Path) -> None:
    """Create the data directory owner-only (0700); an existing one of ours that others can read is tightened."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)


def open_private(path: Path, *, append: bool = True) -> int:
    """A file descriptor on `path`, created owner-only (0600); an existing file is made 0600 too.

    Log files hold request lines and PID files say what runs: neither is anyone else's to read.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd
