"""Re-index steps 2, 3 and 5, the Kafka side of a build: the handoff and the replay.

The handoff is the offsets the live collection's consumer group has committed when the build
starts: everything before them is in the live collection, so the copy carries it over;
everything from them on may not be, so a real ingest worker replays the topic from there into
the build (its own consumer group, seeded with the handoff) until it has caught up. Rows the
copy read half-updated, and every update published since, are applied again; the ingest's
version guard keeps a replayed older version from overwriting a newer copied one. Replay, not
dual-write: ingest workers never need to know a build is running, and a build that dies leaves
nothing behind in them.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chatda.broker.kafka import committed_lag, committed_offsets, keys_between, seed_offsets
from chatda.broker.kafka import end_offsets as topic_end_offsets
from chatda.process import ManagedProcess

_POLL_S = 0.5
_STOP_TIMEOUT_S = 60.0


class ReplayError(RuntimeError):
    """The replay worker died or did not catch up: the build cannot be trusted."""


@dataclass(frozen=True)
class Handoff:
    """Where the build takes over from the live collection, per partition of ``topic``."""

    bootstrap: str
    topic: str
    offsets: dict[int, int]

    @classmethod
    def record(cls, bootstrap: str, topic: str, live_group: str) -> Handoff:
        """The offsets ``live_group`` (the live collection's ingest group) has committed."""
        return cls(bootstrap, topic, committed_offsets(bootstrap, live_group, topic))

    def seed(self, group: str) -> None:
        """Start ``group`` (the build's ingest group) at the handoff."""
        seed_offsets(self.bootstrap, group, self.topic, self.offsets)

    def touched_since(self) -> set[str]:
        """The articles of every record published since the handoff (up to now)."""
        now = topic_end_offsets(self.bootstrap, self.topic)
        keys = keys_between(self.bootstrap, self.topic, self.offsets, now)
        return {key.decode("utf-8", "replace") for key in keys}


class ReplayWorker:
    """``chatda ingest`` as a child process writing the build, dead letters off (the live
    workers already dead-lettered those records); it dies with its parent (PDEATHSIG), so a
    killed re-index leaves no orphan writing into a collection the next run removes."""

    def __init__(
        self,
        *,
        bootstrap: str,
        milvus_uri: str,
        data_dir: Path,
        models_dir: Path,
        topic: str,
        base_group: str,
        alias: str,
        log_path: Path,
    ) -> None:
        env = {
            **os.environ,
            "CHATDA_KAFKA_BOOTSTRAP": bootstrap,
            "CHATDA_MILVUS_URI": milvus_uri,
            "CHATDA_DATA_DIR": str(data_dir),
            "CHATDA_MODELS_DIR": str(models_dir),
        }
        argv = [
            sys.executable, "-m", "cli.main", "ingest",
            "--topic", topic,
            "--group", base_group,
            "--alias", alias,
            "--no-dead-letters",
        ]  # fmt: skip
        self.process = ManagedProcess(
            "reindex-replay", argv, log_path=log_path, env=env, die_with_parent=True
        )
        self.process.spawn()

    def alive(self) -> bool:
        return self.process.running

    def stop(self) -> None:
        """SIGTERM (the worker finishes its batch and commits), SIGKILL after a minute."""
        self.process.stop(timeout_s=_STOP_TIMEOUT_S)


def wait_caught_up(
    replay: ReplayWorker, bootstrap: str, group: str, topic: str, timeout_s: float
) -> None:
    """Block until ``group`` (the replay's) has committed everything on ``topic``."""
    deadline = time.monotonic() + timeout_s
    while committed_lag(bootstrap, group, topic) > 0:
        if not replay.alive():
            raise ReplayError(
                f"the replay worker exited with {replay.process.returncode}; see its log"
            )
        if time.monotonic() > deadline:
            raise ReplayError(f"the replay did not catch up within {timeout_s:.0f}s")
        time.sleep(_POLL_S)
