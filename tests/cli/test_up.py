"""``chatda up`` as a newcomer meets it (issue #26 items 1, 2, 3, 7), on the real stack.

One data dir, two starts of the real command, with the demo data:

* the banner shows the generated admin token and never the operator's publisher token, the
  addresses, progress, and "ready: 120 intents, 75 articles searchable" only once every demo
  article is searchable;
* ``chatda index status`` (no engine configured) describes the running stack through the
  addresses file, and no second, embedded Milvus appears in the data dir; a second
  ``chatda up`` over the same data dir refuses;
* a Ctrl-C to the terminal's process group stops services, then engines, with no traceback
  and no error line, and removes the addresses file; the services' output is in
  ``logs/<name>.log``, without probe access lines;
* the restart embeds no catalog text (all 883, and the 188 calibration background queries,
  come from the on-disk cache) and does not publish the demo articles again: a deleted one
  stays deleted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from chatda.local_stack import stack_path
from chatda.process import free_port

CLI = [sys.executable, "-m", "cli.main"]
OPERATOR_PUBLISHER_TOKEN = "operator-publisher-secret"
DELETED = "a-0001"


class Up:
    """``chatda up`` in its own process group (a terminal's foreground job), output kept."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, prefix: str, timeout_s: float = 900) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            assert self.proc.poll() is None, f"chatda up exited:\n{self.output}"
            time.sleep(0.5)
        raise AssertionError(f"no {prefix!r} line in time:\n{self.output}")

    def ctrl_c(self) -> int:
        """SIGINT to the whole process group, as a terminal's Ctrl-C sends it."""
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(timeout=120)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def up_env(tmp_path: Path, models_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CHATDA_KAFKA_BOOTSTRAP", "CHATDA_MILVUS_URI", "CHATDA_ADMIN_TOKEN"}
    }
    env.update(
        CHATDA_DATA_DIR=str(tmp_path / "data"),
        CHATDA_MODELS_DIR=str(models_dir),
        CHATDA_API_PORT=str(free_port()),
        CHATDA_PUBLISHER_TOKEN=OPERATOR_PUBLISHER_TOKEN,
        CHATDA_DEVICE="cpu",
    )
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def assert_quiet_stop(up: Up, data_dir: Path) -> None:
    assert up.ctrl_c() == 0, up.output
    stop = up.output[up.output.index("· stopping") :]
    assert "Traceback" not in up.output, up.output
    assert "[error" not in stop and "KeyboardInterrupt" not in stop, stop
    assert up.lines[-1] == "· stopped"
    assert not stack_path(data_dir).exists()


def cached_embeddings(data_dir: Path) -> int:
    import sqlite3

    with sqlite3.connect(data_dir / "cache" / "embeddings.sqlite3") as conn:
        (count,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()
    return int(count)


def searchable_after_indexing(stack: dict[str, object]) -> int:
    """Articles in the index once everything published so far is indexed."""
    from pymilvus import MilvusClient

    from chatda.articles.progress import wait_until_indexed
    from chatda.settings import Settings

    settings = Settings()
    client = MilvusClient(uri=str(stack["milvus_uri"]))
    try:
        wait_until_indexed(
            str(stack["kafka_bootstrap"]),
            client,
            settings.ingest_group_id,
            settings.articles_alias,
            settings.articles_topic,
            timeout_s=300,
        )
        (row,) = client.query(
            settings.articles_alias,
            filter="chunk_no == 0",
            output_fields=["count(*)"],
            consistency_level="Strong",
        )
        return int(row["count(*)"])
    finally:
        client.close()


def test_up_refuses_an_api_port_in_use_before_starting_anything(
    up_env: dict[str, str],
) -> None:
    """With the port taken, the API crash-looped on its bind (said only in its log) while the
    console printed "ready" and the URLs of whatever already answered there."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = up_env | {"CHATDA_API_PORT": str(taken.getsockname()[1])}
        done = cli(env, "up")
    assert done.returncode == 1
    assert f"127.0.0.1:{env['CHATDA_API_PORT']} is already in use" in done.stderr
    assert "CHATDA_API_PORT" in done.stderr and "Tansu" not in done.stdout + done.stderr
    assert not stack_path(Path(up_env["CHATDA_DATA_DIR"])).exists()


def test_up_serves_what_it_says_and_restarts_faithfully(up_env: dict[str, str]) -> None:
    data_dir = Path(up_env["CHATDA_DATA_DIR"])
    base = f"http://127.0.0.1:{up_env['CHATDA_API_PORT']}"
    up = Up(up_env)
    try:
        ready = up.wait_for("ready:")
        assert ready == "ready: 120 intents, 75 articles searchable", up.output
        out = up.output
        assert "published 75 demo articles" in out
        assert "· indexing articles:" in out  # progress, the catalog's from /readyz
        # 883 catalog texts + 188 calibration background; the count moves a pass at a time
        assert re.search(r"· API starting: catalog embedded \d+ of 1071 texts", out), out
        admin_line = next(line for line in up.lines if "admin page" in line)
        admin_token = admin_line.rsplit("(token ", 1)[1].rstrip(")")
        assert admin_token and "CHATDA_ADMIN_TOKEN" not in admin_line
        assert OPERATOR_PUBLISHER_TOKEN not in out
        assert "token as configured in CHATDA_PUBLISHER_TOKEN" in out
        assert "  Kafka  " in out and "  Milvus  " in out
        # every service's /metrics, at the addresses the banner prints
        metrics_line = next(line for line in up.lines if line.startswith("  metrics"))
        scraped = {
            name: httpx.get(url, timeout=5).text
            for name, url in re.findall(r"(\w+) (http://127\.0\.0\.1:\d+/metrics)", metrics_line)
        }
        assert set(scraped) == {"ingest", "scheduler", "feedback"}, metrics_line
        assert "chatda_ingest_records_total" in scraped["ingest"]
        assert "chatda_job_runs_total" in scraped["scheduler"]
        assert "chatda_feedback_" in scraped["feedback"]

        stack = json.loads(stack_path(data_dir).read_text())
        assert stack["api_url"] == base and stack["pid"] == up.proc.pid
        assert admin_token not in stack_path(data_dir).read_text()

        status = cli(up_env, "index", "status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["target"] and report["ingest_lag"] == 0
        assert any(c["serving"] and c["rows"] >= 75 for c in report["collections"])
        gc = cli(up_env, "index", "gc")
        assert gc.returncode == 0 and gc.stdout.strip() == "dropped: nothing", gc.stderr
        job = cli(up_env, "jobs", "run", "reconcile-outbox")  # Kafka and Milvus of the stack
        assert job.returncode == 0 and job.stdout.startswith("reconcile-outbox: ok"), job
        assert not (data_dir / "milvus").exists()  # no second, embedded Milvus
        second = cli(up_env, "up")
        assert second.returncode == 1 and "already runs over" in second.stderr

        deleted = httpx.delete(
            f"{base}/v1/articles/{DELETED}",
            headers={"Authorization": f"Bearer {OPERATOR_PUBLISHER_TOKEN}"},
        )
        assert deleted.status_code == 202, deleted.text
        assert searchable_after_indexing(stack) == 74
        assert cached_embeddings(data_dir) == 1071  # every distinct catalog and background text
    except BaseException:
        up.kill()
        raise
    assert_quiet_stop(up, data_dir)
    api_log = (data_dir / "logs" / "api.log").read_text()
    assert "Application shutdown complete" in api_log  # the service's lines: in its log
    assert "GET /healthz" not in api_log and "GET /readyz" not in api_log
    assert "Application shutdown complete" not in up.output

    again = Up(up_env)
    try:
        ready = again.wait_for("ready:")
        # the deletion was indexed before the stop or is re-sent from the outbox: either way
        # the demo is not published over it
        assert ready == "ready: 120 intents, 74 articles searchable", again.output
        assert "demo articles published before" in again.output
        assert "published 75" not in again.output
        snapshot_lines = [
            line
            for line in (data_dir / "logs" / "api.log").read_text().splitlines()
            if "catalog snapshot v1" in line
        ]
        assert "1071 texts (0 embedded)" in snapshot_lines[-1], snapshot_lines
        assert cached_embeddings(data_dir) == 1071
    except BaseException:
        again.kill()
        raise
    assert_quiet_stop(again, data_dir)
