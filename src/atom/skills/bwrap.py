"""The bubblewrap command line of a sandbox: new user, pid, net, ipc, uts and cgroup namespaces (no network:
only an empty loopback), /usr read-only and / remounted read-only, a private tmpfs /tmp, one writable work
dir /work, a handful of /etc files (no /etc/shadow), a cleared environment, the given uid/gid inside."""

from __future__ import annotations

import os
from pathlib import Path

SANDBOX_TMP = "/tmp"  # noqa: S108 — the sandbox's own private tmpfs, not the host's /tmp
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/mime.types")


def argv(bwrap: str, command: list[str], workdir: Path, uid: int, gate_args: list[str]) -> list[str]:
    args = [
        bwrap,
        *gate_args,
        "--unshare-all",
        "--unshare-user",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("bin", "sbin", "lib", "lib64", "lib32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for etc in ETC_FILES:
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    args += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        SANDBOX_TMP,
        "--bind",
        str(workdir),
        "/work",
        "--chdir",
        "/work",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/local/bin:/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/work",
        "--setenv",
        "TMPDIR",
        SANDBOX_TMP,
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        "--uid",
        str(uid),
        "--gid",
        str(uid),
        "--remount-ro",
        "/",
        "--",
        *command,
    ]
    return args
