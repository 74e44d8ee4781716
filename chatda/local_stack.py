"""Where the running local stack (``chatda up``) can be reached: one file in the data dir.

``chatda up`` starts its engines on free ports, different on every start. It writes their
addresses (broker bootstrap, Milvus URI, API URL; never a token) to ``<data dir>/stack.json``,
atomically, and removes the file on a clean stop. Every process reading settings through
``chatda.settings.get_settings`` fills an unset ``CHATDA_KAFKA_BOOTSTRAP`` or
``CHATDA_MILVUS_URI`` from that file (``with_running_stack``): so ``chatda index status``,
``chatda publish``, ``chatda jobs run``… talk to the running stack instead of starting a second,
embedded engine over the same data dir. A file whose supervisor pid is dead (a SIGKILLed
``chatda up``) is stale: it is ignored and removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from chatda.settings import Settings

log = logging.getLogger(__name__)

STACK_FILE = "stack.json"
_CHATDA_ARGV = frozenset({"chatda", "cli.main"})
"""How ``chatda up`` appears in its command line: the console script, or ``python -m``."""


class LocalStack(BaseModel):
    """The addresses of a running ``chatda up``; ``pid`` is its supervisor's process."""

    pid: int
    kafka_bootstrap: str
    milvus_uri: str
    api_url: str


def stack_path(data_dir: Path) -> Path:
    return Path(data_dir) / STACK_FILE


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is still a running chatda process (where ``/proc`` tells the command
    line: a pid the system reused for something else does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # no /proc (macOS): the pid's existence is all there is to go on
        return True
    return any(Path(os.fsdecode(arg)).name in _CHATDA_ARGV for arg in argv)


def write_stack(data_dir: Path, stack: LocalStack) -> Path:
    """Write the file atomically (temporary file + rename): a reader never sees half of it."""
    path = stack_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{STACK_FILE}.{os.getpid()}")
    staging.write_text(stack.model_dump_json(indent=2), encoding="utf-8")
    os.replace(staging, path)
    return path


def remove_stack(data_dir: Path, pid: int) -> None:
    """Remove the file if it is still ``pid``'s (a later stack's file is left alone)."""
    path = stack_path(data_dir)
    try:
        stack = LocalStack.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        return
    if stack.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def running_stack(data_dir: Path) -> LocalStack | None:
    """The stack running over ``data_dir``, or None (no file, unreadable, or stale)."""
    path = stack_path(data_dir)
    try:
        stack = LocalStack.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    if not pid_alive(stack.pid):
        log.info("removing stale %s (chatda up pid %d is gone)", path, stack.pid)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    return stack


def with_running_stack(settings: Settings) -> Settings:
    """``settings`` with each unset engine address taken from the running local stack.

    An external engine the operator configured always wins; without a running stack the
    settings are returned unchanged.
    """
    if settings.kafka_bootstrap and settings.milvus_uri:
        return settings
    stack = running_stack(settings.data_dir)
    if stack is None:
        return settings
    return settings.model_copy(
        update={
            "kafka_bootstrap": settings.kafka_bootstrap or stack.kafka_bootstrap,
            "milvus_uri": settings.milvus_uri or stack.milvus_uri,
        }
    )
