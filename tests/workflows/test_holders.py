"""Which lease holders a starting process may judge dead (workflows/holders.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from atom.workflows import holders


def test_only_a_process_of_this_host_that_is_gone_is_dead() -> None:
    me = holders.this_process()
    host, pid, start = me.rsplit(":", 2)
    assert (host, pid) == (holders.host(), str(os.getpid())) and start
    assert not holders.is_dead(me)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert holders.is_dead(f"{host}:{gone.pid}:{start}")  # exited
    assert holders.is_dead(f"{host}:{os.getpid()}:{int(start) - 1}")  # this PID, an earlier start
    parent = os.getppid()
    assert not holders.is_dead(f"{host}:{parent}:{holders._start_ticks(parent)}")  # alive, same start
    assert not holders.is_dead(f"other-host:{gone.pid}:{start}")  # another host: cannot tell
    assert not holders.is_dead("worker-a")  # a name given by hand
    assert not holders.is_dead(None)
