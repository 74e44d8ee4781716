"""The addresses file of ``chatda up`` (``chatda.local_stack``): how every command finds the
running stack, and why a dead one is never trusted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatda.local_stack import (
    LocalStack,
    remove_stack,
    running_stack,
    stack_path,
    with_running_stack,
    write_stack,
)
from chatda.settings import Settings, get_settings


def stack(pid: int) -> LocalStack:
    return LocalStack(
        pid=pid,
        kafka_bootstrap="127.0.0.1:19092",
        milvus_uri="http://127.0.0.1:19530",
        api_url="http://127.0.0.1:8000",
    )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def up_pid() -> Iterator[int]:
    """A live process whose command line is a chatda one, standing in for ``chatda up``."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "chatda", "up"])
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    while cmdline.exists() and b"chatda\0" not in cmdline.read_bytes():  # until it has exec'd
        time.sleep(0.01)
    yield proc.pid
    proc.kill()
    proc.wait()


def test_unset_engines_come_from_the_running_stack(tmp_path: Path, up_pid: int) -> None:
    write_stack(tmp_path, stack(up_pid))
    found = with_running_stack(Settings(data_dir=tmp_path))
    assert (found.kafka_bootstrap, found.milvus_uri) == (
        "127.0.0.1:19092",
        "http://127.0.0.1:19530",
    )
    configured = with_running_stack(
        Settings(data_dir=tmp_path, milvus_uri="http://milvus:19530", kafka_bootstrap=None)
    )
    assert configured.milvus_uri == "http://milvus:19530"  # the operator's engine wins
    assert configured.kafka_bootstrap == "127.0.0.1:19092"


def test_get_settings_resolves_through_the_stack_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, up_pid: int
) -> None:
    monkeypatch.setenv("CHATDA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CHATDA_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("CHATDA_MILVUS_URI", raising=False)
    write_stack(tmp_path, stack(up_pid))
    get_settings.cache_clear()
    try:
        assert get_settings().milvus_uri == "http://127.0.0.1:19530"
    finally:
        get_settings.cache_clear()


def test_a_dead_supervisors_file_is_stale_and_removed(tmp_path: Path) -> None:
    write_stack(tmp_path, stack(dead_pid()))
    assert running_stack(tmp_path) is None
    assert not stack_path(tmp_path).exists()
    assert with_running_stack(Settings(data_dir=tmp_path)).milvus_uri is None


def test_a_reused_pid_is_not_the_stack(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        write_stack(tmp_path, stack(other.pid))  # alive, but not chatda
        assert running_stack(tmp_path) is None
    finally:
        other.kill()
        other.wait()


def test_the_file_is_whole_and_removed_only_by_its_owner(tmp_path: Path, up_pid: int) -> None:
    stack_path(tmp_path).write_text("{ half a file")
    assert running_stack(tmp_path) is None  # unreadable: ignored, never trusted
    write_stack(tmp_path, stack(up_pid))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.json"]  # no staging left
    remove_stack(tmp_path, up_pid + 1)  # another stack's stop leaves it alone
    assert running_stack(tmp_path) == stack(up_pid)
    remove_stack(tmp_path, up_pid)
    assert not stack_path(tmp_path).exists()


def test_index_commands_never_open_an_embedded_milvus(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CHATDA_MILVUS_URI", "CHATDA_KAFKA_BOOTSTRAP"}
    }
    env["CHATDA_DATA_DIR"] = str(tmp_path)
    for command in (["status"], ["rollback"], ["gc"]):
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "index", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2 and "no `chatda up` is running" in done.stderr, done.stderr
    assert not (tmp_path / "milvus").exists()
