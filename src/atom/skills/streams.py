"""A running sandbox's pipes: stdin fed, stdout+stderr read within the wall clock and the output cap; killing."""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import threading
import time
from typing import IO

from atom.skills import cgroups


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError):
        if data:
            pipe.write(data)
        pipe.close()


def collect(
    process: subprocess.Popen[bytes], stdin: bytes, timeout_s: float, output_bytes: int, started: float
) -> tuple[bytearray, bytearray, str | None]:
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    # Fed from a thread: a program that never reads its stdin must not block the wall clock.
    if stdin:
        threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True).start()
    else:
        _feed(process.stdin, stdin)
    out, err = bytearray(), bytearray()
    buffers = {process.stdout.fileno(): out, process.stderr.fileno(): err}
    with selectors.DefaultSelector() as selector:
        for stream in (process.stdout, process.stderr):
            selector.register(stream, selectors.EVENT_READ)
        open_streams = 2
        while open_streams:
            remaining = timeout_s - (time.perf_counter() - started)
            if remaining <= 0:
                return out, err, "timeout"
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                buffers[key.fd].extend(chunk)
                if len(out) + len(err) > output_bytes:
                    del out[output_bytes:]
                    del err[max(0, output_bytes - len(out)) :]
                    return out, err, "output"
        remaining = timeout_s - (time.perf_counter() - started)
        try:
            process.wait(timeout=max(remaining, 0.01))
        except subprocess.TimeoutExpired:
            return out, err, "timeout"
    return out, err, None


def close_streams(process: subprocess.Popen[bytes], *, stdin_too: bool = False) -> None:
    """stdout and stderr; stdin only where no feeding thread owns it."""
    for stream in (process.stdin if stdin_too else None, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def kill(process: subprocess.Popen[bytes], run_cgroup: cgroups.CgroupRun | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)
    if run_cgroup is not None:
        run_cgroup.kill_all()
