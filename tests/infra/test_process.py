"""``chatda.process.ManagedProcess`` for workers: the environment given, the exit code, and a
child that dies with its parent (what keeps a killed re-index from leaving its replay behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatda.process import ManagedProcess

REPO = Path(__file__).resolve().parents[2]

# A parent that starts a sleeping child through ManagedProcess, prints its pid, and waits to be
# killed; argv[1] says whether the child should die with it.
_PARENT = """
import sys, time
from chatda.process import ManagedProcess
child = ManagedProcess(
    "sleeper", [sys.executable, "-c", "import time; time.sleep(120)"],
    die_with_parent=sys.argv[1] == "yes",
)
child.spawn()
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _orphan_after_parent_killed(die_with_parent: bool) -> int:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, "yes" if die_with_parent else "no"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()
    parent.wait()
    return child


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_started_to_die_with_its_parent_does_so_even_on_sigkill() -> None:
    child = _orphan_after_parent_killed(die_with_parent=True)
    assert _gone_within(child, 10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_without_it_the_child_outlives_its_parent() -> None:
    child = _orphan_after_parent_killed(die_with_parent=False)
    try:
        assert not _gone_within(child, 1)
    finally:
        os.kill(child, signal.SIGKILL)


def test_the_child_gets_the_environment_given_and_reports_its_exit_code(tmp_path: Path) -> None:
    script = "import os, sys; sys.exit(7 if os.environ.get('CHATDA_PROBE') == 'given' else 1)"
    process = ManagedProcess(
        "probe",
        [sys.executable, "-c", script],
        log_path=tmp_path / "probe.log",
        env={**os.environ, "CHATDA_PROBE": "given"},
    )
    assert process.returncode is None
    process.spawn()
    deadline = time.monotonic() + 30
    while process.running:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert process.returncode == 7
    process.stop()
    assert process.returncode is None and (tmp_path / "probe.log").exists()
