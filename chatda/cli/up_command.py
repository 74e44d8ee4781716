"""``chatda up`` (what ``make run`` calls): the whole local stack under one supervisor.

Embedded engines are started only when no external ones are configured: the Tansu broker and a
milvus-lite server. Then the API, one ingest worker, the indexer scheduler and the feedback
consumer run as separate processes; the demo
catalog is loaded and the demo articles are published through Kafka, exactly as a publisher
would. Ctrl-C stops everything in reverse order.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from urllib.parse import quote

import httpx
import typer

from chatda.settings import get_settings

SAMPLE_QUERY = "해외로 돈 보내고 싶어"


def _wait_healthy(base: str, proc: subprocess.Popen, timeout_s: float = 600) -> None:
    """Until the API answers and its catalog is embedded, so the printed URLs work at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited with {proc.returncode}; see its log above")
        try:
            health = httpx.get(f"{base}/healthz", timeout=2)
            if health.status_code == 200 and health.json()["catalog"]["ready"]:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the API did not become healthy in time")


def _publish_demo_articles(bootstrap: str) -> int:
    from chatda.articles.message import ArticleMessage
    from chatda.articles.publisher import Publisher
    from chatda.demo import articles_path

    settings = get_settings()
    lines = articles_path().read_text(encoding="utf-8").splitlines()
    messages = [ArticleMessage.model_validate(json.loads(line)) for line in lines if line.strip()]
    with Publisher(bootstrap, settings.articles_topic, settings.article_partitions) as publisher:
        publisher.publish_many(messages)
    return len(messages)


def _load_demo_catalog() -> int:
    from chatda.catalog.file_format import read_catalog
    from chatda.catalog.store import CatalogStore
    from chatda.db.engine import make_engine, upgrade
    from chatda.demo import catalog_path

    engine = make_engine(get_settings().sql_url)
    upgrade(engine)
    store = CatalogStore(engine)
    if store.list():
        return 0
    return store.import_intents(read_catalog(catalog_path()))


def up(
    demo: bool = typer.Option(True, help="load the demo catalog and publish the demo articles"),
) -> None:
    """Run broker, Milvus, API, ingest worker and scheduler locally until Ctrl-C."""
    from chatda.broker.tansu import TansuBroker
    from chatda.storage.milvus_server import MilvusLiteServer

    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CHATDA_DATA_DIR"] = str(data_dir)
    env.setdefault("CHATDA_ADMIN_TOKEN", secrets.token_urlsafe(16))
    env.setdefault("CHATDA_PUBLISHER_TOKEN", secrets.token_urlsafe(16))
    children: list[tuple[str, subprocess.Popen]] = []

    with ExitStack() as stack:
        bootstrap = settings.kafka_bootstrap
        if not bootstrap:
            broker = stack.enter_context(TansuBroker(log_path=logs / "tansu.log"))
            bootstrap = broker.bootstrap
            typer.echo(f"· Tansu broker (in-memory) on {bootstrap}")
        env["CHATDA_KAFKA_BOOTSTRAP"] = bootstrap
        milvus_uri = settings.milvus_uri
        if not milvus_uri:
            milvus = stack.enter_context(
                MilvusLiteServer(data_dir / "milvus-server", log_path=logs / "milvus.log")
            )
            milvus_uri = milvus.uri
            typer.echo(f"· milvus-lite server on {milvus_uri} (data in {data_dir})")
        env["CHATDA_MILVUS_URI"] = milvus_uri

        if demo:
            loaded = _load_demo_catalog()
            typer.echo(
                f"· demo catalog: {loaded} intents imported"
                if loaded
                else "· catalog already present: kept"
            )

        def spawn(name: str, *args: str) -> subprocess.Popen:
            cmd = [sys.executable, "-m", "chatda.cli.main", *args]
            proc = subprocess.Popen(cmd, env=env)
            children.append((name, proc))
            return proc

        def stop_children() -> None:
            for _name, proc in reversed(children):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for name, proc in reversed(children):
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    typer.echo(f"· {name} did not stop in 30 s; killing it", err=True)
                    proc.kill()

        stack.callback(stop_children)
        base = f"http://{settings.api_host}:{settings.api_port}"
        api = spawn("api", "serve")
        spawn("ingest", "ingest")
        spawn("scheduler", "scheduler")
        spawn("feedback", "feedback-consumer")
        _wait_healthy(base, api)
        if demo:
            typer.echo(f"· published {_publish_demo_articles(bootstrap)} demo articles to Kafka")

        typer.echo("")
        typer.echo(f"  API docs     {base}/docs")
        typer.echo(f"  admin page   {base}/admin   (token: {env['CHATDA_ADMIN_TOKEN']})")
        typer.echo(f"  intents      {base}/v1/intents/match?q={quote(SAMPLE_QUERY)}")
        typer.echo(f"  search       {base}/v1/search?q={quote(SAMPLE_QUERY)}")
        typer.echo(f"  metrics      {base}/metrics")
        typer.echo(f"  logs         {logs}")
        typer.echo("  Ctrl-C stops everything.")

        stopping = False

        def _on_signal(signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    typer.echo(
                        f"· {name} exited with {proc.returncode}; stopping the stack", err=True
                    )
                    stopping = True
            time.sleep(0.5)
        typer.echo("· stopping…")
