"""Sandbox escape attempts: each one fails inside bubblewrap and the result says why."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from atom.errors import Unavailable
from atom.skills.sandbox import Sandbox, SandboxLimits
from tests.support import databases

PY = ["/usr/bin/python3", "-I", "-S", "-c"]


@pytest.fixture(scope="module", params=["cgroup", "rlimit", "cgroup-cold", "rlimit-cold"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Warm: the next run's sandbox is prepared in the background (each test waits for it); cold: never."""
    warm = not request.param.endswith("-cold")
    box = Sandbox(use_cgroups=request.param.startswith("cgroup"), warm=warm)
    reason = box.probe()
    if reason:
        databases.missing_service(f"the skill sandbox cannot confine here: {reason}")
    if request.param.startswith("cgroup") and box.cgroup_version is None:
        pytest.skip("no writable cgroup on this machine (the rlimit variant runs)")
    if warm:
        box.run(["/bin/true"])  # the first run starts the preparation
    yield box
    box.close()


@pytest.fixture(autouse=True)
def _warm_first(request: pytest.FixtureRequest) -> None:
    if "sandbox" in request.fixturenames:
        box = request.getfixturevalue("sandbox")
        if box._warm_python is not None:
            assert box.wait_warm(30), "the warm sandbox was not prepared"


def _py(box: Sandbox, code: str, timeout: float = 5.0, **files: str) -> object:
    return box.run([*PY, code], files=files, limits=SandboxLimits(timeout_s=timeout))


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def host_server() -> Iterator[int]:
    _Recorder.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_code_runs_as_nobody_in_its_work_dir(sandbox: Sandbox) -> None:
    result = sandbox.run(["/usr/bin/python3", "-I", "run.py"], files={"run.py": "import os\nprint(os.getcwd())"})
    assert result.ok and result.stdout.strip() == "/work"
    assert sandbox.confinement()["network"].startswith("none")


def test_no_network_to_the_host_loopback(sandbox: Sandbox, host_server: int) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{host_server}/from-host") as response:
        assert response.status == 200  # the server is really there
    code = f"import socket; socket.create_connection(('127.0.0.1', {host_server}), 2)"
    result = _py(sandbox, code)
    assert result.exit_code != 0 and "ConnectionRefusedError" in result.stderr  # type: ignore[attr-defined]
    assert _Recorder.hits == ["/from-host"]


def test_no_network_to_a_public_address(sandbox: Sandbox) -> None:
    result = _py(sandbox, "import socket; socket.create_connection(('1.1.1.1', 80), 2)")
    assert result.exit_code != 0 and "Network is unreachable" in result.stderr  # type: ignore[attr-defined]


def test_cannot_read_shadow_or_the_data_dir(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "data" / "secret.key"
    secret.parent.mkdir()
    secret.write_text("top secret")
    for path in ("/etc/shadow", str(secret)):
        result = _py(sandbox, f"print(open({path!r}).read())")
        assert result.exit_code != 0 and "FileNotFoundError" in result.stderr, path  # type: ignore[attr-defined]
        assert "top secret" not in result.stdout  # type: ignore[attr-defined]


def test_cannot_write_outside_the_work_dir(sandbox: Sandbox, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    for path in ("/usr/evil", "/evil", str(outside)):
        result = _py(sandbox, f"open({path!r}, 'w').write('x')")
        assert result.exit_code != 0, path  # type: ignore[attr-defined]
        assert "Read-only file system" in result.stderr or "No such file" in result.stderr  # type: ignore[attr-defined]
    assert not outside.exists()
    inside = _py(sandbox, "open('out.txt', 'w').write('x'); open('/tmp/t', 'w').write('y'); print('ok')")
    assert inside.ok and inside.stdout.strip() == "ok"  # type: ignore[attr-defined]


def test_fork_bomb_hits_the_pids_limit(sandbox: Sandbox) -> None:
    result = _py(sandbox, "import os\nwhile True:\n    os.fork()", timeout=10)
    assert not result.ok  # type: ignore[attr-defined]
    if sandbox.cgroup_version is not None:
        assert result.violation == "pids"  # type: ignore[attr-defined]
    else:
        assert "BlockingIOError" in result.stderr or result.violation is not None  # type: ignore[attr-defined]


def test_memory_bomb_hits_the_memory_limit(sandbox: Sandbox) -> None:
    result = _py(sandbox, "x = []\nwhile True:\n    x.append(bytearray(16 * 1024 * 1024))", timeout=10)
    assert not result.ok  # type: ignore[attr-defined]
    if sandbox.cgroup_version is not None:
        assert result.violation == "memory"  # type: ignore[attr-defined]
    else:
        assert "MemoryError" in result.stderr  # type: ignore[attr-defined]


def test_endless_loop_is_stopped_at_the_wall_clock(sandbox: Sandbox) -> None:
    result = _py(sandbox, "while True:\n    pass", timeout=1.5)
    assert result.violation == "timeout" and result.exit_code != 0  # type: ignore[attr-defined]


def test_100_mb_of_output_is_cut_at_the_cap(sandbox: Sandbox) -> None:
    code = "import sys\nfor _ in range(1600):\n    sys.stdout.write('x' * 65536)"
    result = sandbox.run([*PY, code], limits=SandboxLimits(timeout_s=20, output_bytes=1024 * 1024))
    assert result.violation == "output"
    assert len(result.stdout) + len(result.stderr) <= 1024 * 1024


def test_timeouts_are_bounded() -> None:
    box = Sandbox()
    if box.probe():
        databases.missing_service("the skill sandbox cannot confine here")
    with pytest.raises(Exception, match="timeout must be"):
        box.run(["/bin/true"], limits=SandboxLimits(timeout_s=301))


def test_refuses_to_run_when_it_cannot_confine() -> None:
    for box in (Sandbox(bwrap_path="/nonexistent/bwrap"), Sandbox(backend="docker")):
        with pytest.raises(Unavailable) as caught:
            box.run(["/bin/true"])
        assert caught.value.code == "SANDBOX_UNAVAILABLE" and caught.value.details["reason"]


def test_a_program_that_never_reads_its_stdin_still_hits_the_wall_clock(sandbox: Sandbox) -> None:
    result = sandbox.run(
        [*PY, "import time\ntime.sleep(60)"], stdin=b"x" * (1024 * 1024), limits=SandboxLimits(timeout_s=1.5)
    )
    # Stopped at its limit, long before the program's own 60 s end (not a speed assertion).
    assert result.violation == "timeout" and result.duration_ms < 30_000


def _limits_inside(result: object) -> dict[str, str]:
    """'Max cpu time' -> its soft limit, from /proc/self/limits printed inside the sandbox."""
    rows = {}
    for line in result.stdout.splitlines()[1:]:  # type: ignore[attr-defined]
        name, soft = line[:26].strip(), line[26:47].strip()
        rows[name] = soft
    return rows


def test_the_limits_are_set_before_the_program_starts(sandbox: Sandbox) -> None:
    result = sandbox.run(["/bin/cat", "/proc/self/limits"], limits=SandboxLimits(timeout_s=7))
    assert result.ok, result.stderr
    rows = _limits_inside(result)
    assert rows["Max cpu time"] == "8" and rows["Max open files"] == "256"
    assert rows["Max file size"] == str(64 * 1024 * 1024) and rows["Max core file size"] == "0"
    if sandbox.cgroup_version is None:  # else the cgroup holds them (the fork and memory bombs above)
        assert rows["Max address space"] == str(256 * 1024 * 1024) and rows["Max processes"] == "64"


def test_without_the_prlimit_program_it_confines_or_refuses(tmp_path: Path) -> None:
    """Limits then go on the waiting child with prlimit(2), which needs CAP_SYS_RESOURCE over it. Where that
    is missing the run is refused and the program never starts; where it is there, the limits hold."""
    box = Sandbox(prlimit_path=None)
    if box.probe():
        assert "could not confine" in box.probe()
        with pytest.raises(Unavailable):
            box.run(["/bin/true"])
        return
    result = box.run(["/bin/cat", "/proc/self/limits"], limits=SandboxLimits(timeout_s=7))
    assert _limits_inside(result)["Max cpu time"] == "8"


def test_the_program_gets_its_files_its_limits_and_in_a_warm_sandbox_only_its_own_descriptors(
    sandbox: Sandbox,
) -> None:
    """A warm sandbox's launcher closes every descriptor but stdin/stdout/stderr, sets the run's limits,
    then execs (a cold start leaves the gate's pipe end: nothing reads it once the program runs)."""
    code = (
        "import os\n"
        "def is_open(fd):\n"
        "    try:\n        os.fstat(fd)\n        return True\n    except OSError:\n        return False\n"
        "print([fd for fd in range(3, 64) if is_open(fd)], os.getuid(), os.getcwd(), open('in.txt').read())"
    )
    result = sandbox.run([*PY, code], files={"in.txt": "given"}, limits=SandboxLimits(timeout_s=4))
    assert result.ok, result.stderr
    extra, rest = result.stdout.split("]", 1)
    assert rest.split() == ["65534", "/work", "given"]
    if sandbox._warm_python is not None:
        assert extra == "["
    limits = _limits_inside(sandbox.run(["/bin/cat", "/proc/self/limits"], limits=SandboxLimits(timeout_s=4)))
    assert limits["Max cpu time"] == "5"


def test_a_smaller_memory_limit_than_the_prepared_one_still_holds(sandbox: Sandbox) -> None:
    limits = SandboxLimits(timeout_s=10, memory_bytes=64 * 1024 * 1024)
    grab = "x = bytearray(128 * 1024 * 1024)\nprint('got it')"
    result = sandbox.run([*PY, grab], limits=limits)
    assert not result.ok and "got it" not in result.stdout
    if sandbox.cgroup_version is not None:
        assert result.violation == "memory"
    else:
        assert "MemoryError" in result.stderr
