"""Milvus killed and restarted under search load (issue 23: "Must show", item 9).

A real API process (``chatda serve``) searches a milvus-lite server's collection while clients
keep searching. SIGKILL of the server: every answer is still a 200, partial (the document legs
report their failure), and /readyz names Milvus; the server is started again over the same data
dir and port: /readyz is ready again and answers become complete again by themselves, with no
restart of the API. (milvus-lite comes back with its collections released: the search path
loads them again, chatda.storage.milvus_client.Reloader.)
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymilvus import MilvusClient

from chatda.models.encoder import Encoder
from chatda.storage.articles_schema import create_articles_collection, ensure_alias
from chatda.storage.milvus_server import MilvusLiteServer
from tests.api.api_process import api_process
from tests.search.corpus import Article, article_rows

BUDGET_MS = 1500
PROFILES = f"""\
patient:
  budget_ms: {BUDGET_MS}
  sources: [dense, bm25]
  fusion: {{method: rrf, k: 60, weights: {{dense: 1.0, bm25: 0.6}}}}
"""
QUERY = {"q": "해외송금 수수료", "profile": "patient"}
ARTICLES = [
    Article(
        "fx-fee",
        "해외송금 수수료 아끼는 법",
        "해외송금을 보낼 때는 송금 수수료와 환율 우대를 함께 봐야 합니다.",
        "송금",
    ),
    Article("parking", "파킹통장 고르는 법", "파킹통장은 수시입출금 통장입니다.", "저축"),
]
WAIT_S = 120.0
CLIENT_TIMEOUT_S = BUDGET_MS / 1000 + 5  # an answer later than this is a hang, not slowness


@dataclass
class Answer:
    phase: str
    status: int
    body: dict[str, Any]

    @property
    def complete(self) -> bool:
        return self.status == 200 and not self.body["partial"] and bool(self.body["documents"])


@dataclass
class SearchLoad:
    """Clients searching without pause; each answer is tagged with the phase it was sent in."""

    base: str
    phase: str = "up"
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=CLIENT_TIMEOUT_S) as client:
            while not self.stop.is_set():
                phase = self.phase
                response = client.get("/v1/search", params=QUERY)
                self.answers.append(Answer(phase, response.status_code, response.json()))

    def in_phase(self, phase: str) -> list[Answer]:
        return [a for a in list(self.answers) if a.phase == phase]


@contextmanager
def search_load(base: str, clients: int = 2) -> Iterator[SearchLoad]:
    load = SearchLoad(base)
    threads = [threading.Thread(target=load.run, name=f"search-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 1)


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def readyz(base: str) -> httpx.Response:
    return httpx.get(f"{base}/readyz", timeout=5)


def milvus_failing(base: str) -> bool:
    response = readyz(base)
    return response.status_code == 503 and response.json()["error"]["failing"] == ["milvus"]


def test_search_recovers_by_itself_after_milvus_is_killed_and_restarted(
    models_dir: Path, encoder: Encoder, tmp_path: Path
) -> None:
    data_dir = tmp_path / "milvus"
    server = MilvusLiteServer(data_dir).start()
    port = server.port
    suffix = uuid.uuid4().hex[:8]
    alias, collection = f"restart_{suffix}", f"articles__restart_{suffix}__20260101T000000"
    admin = MilvusClient(uri=server.uri)
    create_articles_collection(admin, collection, encoder.ref)
    admin.insert(collection, article_rows(encoder, ARTICLES, 96))
    ensure_alias(admin, alias, collection)
    admin.close()
    env = {
        "CHATDA_DATA_DIR": str(tmp_path / "api"),
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_DEVICE": "cpu",
        "CHATDA_MILVUS_URI": server.uri,
        "CHATDA_ARTICLES_ALIAS": alias,
        "CHATDA_PROFILES": PROFILES,
    }
    try:
        with api_process(env, tmp_path / "api.log") as (base, api), search_load(base) as load:
            wait_for("ready", lambda: readyz(base).status_code == 200)
            wait_for("a complete answer", lambda: any(a.complete for a in load.answers))

            os.kill(server.pid or 0, signal.SIGKILL)
            server.stop()
            wait_for("/readyz names milvus", lambda: milvus_failing(base))
            load.phase = "down"
            wait_for("answers while down", lambda: len(load.in_phase("down")) >= 10)

            server = MilvusLiteServer(data_dir, port=port).start()
            load.phase = "restarted"
            wait_for("ready again", lambda: readyz(base).status_code == 200)
            wait_for("complete again", lambda: any(a.complete for a in load.in_phase("restarted")))
            assert api.running  # recovered without a restart of the API
        assert {a.status for a in load.answers} == {200}, [a.body for a in load.answers]
        for answer in load.in_phase("down"):
            assert answer.body["partial"] is True and answer.body["documents"] == []
            assert all(s["status"] != "ok" for s in answer.body["sources"].values())
        complete = next(a for a in load.in_phase("restarted") if a.complete)
        assert complete.body["documents"][0]["post_id"] == "fx-fee"
    finally:
        server.stop()
