"""``chatda up`` (what ``make run`` calls): the whole local stack under one supervisor.

Embedded engines are started only when no external ones are configured: the Tansu broker and a
milvus-lite server. Then the API, one ingest worker, the indexer scheduler and the feedback
consumer run as separate processes under ``chatda.cli.supervisor``: a child that crashes (the
embedded engines included, on their same port) is restarted with backoff, and only Ctrl-C (or
SIGTERM) stops the stack, in reverse order.

Before the children start, the article outbox is reconciled once with no grace: the embedded
broker keeps records in memory, so whatever was accepted (answered 202) but not yet indexed
when the stack last stopped is sent again now (``indexer.outbox_job``). The demo catalog is
loaded and the demo articles are published through Kafka, exactly as a publisher would.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from contextlib import ExitStack
from urllib.parse import quote

import httpx
import typer

from chatda.settings import Settings, get_settings

log = logging.getLogger(__name__)

SAMPLE_QUERY = "해외로 돈 보내고 싶어"


def _wait_ready(base: str, timeout_s: float = 600) -> None:
    """Until ``/readyz`` says the API can serve (model and catalog loaded, Milvus answering), so
    the printed URLs work at once. A crashed API is restarted by the supervisor meanwhile; only
    the deadline gives up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the API did not become ready in time")


def _publish_demo_articles(settings: Settings) -> int:
    from chatda.articles.message import ArticleMessage
    from chatda.articles.publisher import Publisher
    from chatda.demo import articles_path

    lines = articles_path().read_text(encoding="utf-8").splitlines()
    messages = [ArticleMessage.model_validate(json.loads(line)) for line in lines if line.strip()]
    with Publisher.from_settings(settings) as publisher:
        publisher.publish_many(messages)
    return len(messages)


def fill_tokens(settings: Settings, env: dict[str, str]) -> str | None:
    """Generate the admin and publisher tokens the operator did not configure, into ``env``.

    Returns the generated admin token, the only one ``up`` may print: a token configured in
    the environment or ``.env`` is the operator's secret and never reaches the terminal.
    """
    generated = None
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        generated = env["CHATDA_ADMIN_TOKEN"] = secrets.token_urlsafe(16)
    if settings.publisher_token is None or not settings.publisher_token.get_secret_value():
        env["CHATDA_PUBLISHER_TOKEN"] = secrets.token_urlsafe(16)
    return generated


def redeliver_accepted(settings: Settings) -> str:
    """Send again every accepted article the index does not hold (no grace), once at start.

    A failure here is reported and left to the scheduler's ``reconcile-outbox`` job, which
    retries every few seconds: the stack must still come up.
    """
    from chatda.db.engine import make_engine, upgrade
    from indexer.outbox_job import reconcile_from_settings

    engine = make_engine(settings.sql_url)
    try:
        upgrade(engine)
        done = reconcile_from_settings(settings, engine, grace_s=0)
    except Exception as exc:
        log.warning("outbox reconcile at start failed", exc_info=True)
        return f"not reconciled yet ({type(exc).__name__}: {exc}); the scheduler retries"
    finally:
        engine.dispose()
    return f"{done.confirmed} confirmed, {done.resent} sent again, {done.failed} failed"


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
    from chatda.cli.supervisor import Supervisor
    from chatda.storage.milvus_server import MilvusLiteServer

    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CHATDA_DATA_DIR"] = str(data_dir)
    generated_admin_token = fill_tokens(settings, env)

    supervisor = Supervisor(echo=lambda line: typer.echo(line, err=True))
    with ExitStack() as stack:
        bootstrap = settings.kafka_bootstrap
        if not bootstrap:
            broker = stack.enter_context(TansuBroker(log_path=logs / "tansu.log"))
            supervisor.keep("tansu", broker)
            bootstrap = broker.bootstrap
            typer.echo(f"· Tansu broker (in-memory) on {bootstrap}")
        env["CHATDA_KAFKA_BOOTSTRAP"] = bootstrap
        milvus_uri = settings.milvus_uri
        if not milvus_uri:
            milvus = stack.enter_context(
                MilvusLiteServer(data_dir / "milvus-server", log_path=logs / "milvus.log")
            )
            supervisor.keep("milvus-lite", milvus)
            milvus_uri = milvus.uri
            typer.echo(f"· milvus-lite server on {milvus_uri} (data in {data_dir})")
        env["CHATDA_MILVUS_URI"] = milvus_uri
        stack_settings = settings.model_copy(
            update={"data_dir": data_dir, "kafka_bootstrap": bootstrap, "milvus_uri": milvus_uri}
        )
        typer.echo(f"· accepted articles not yet indexed: {redeliver_accepted(stack_settings)}")

        if demo:
            loaded = _load_demo_catalog()
            typer.echo(
                f"· demo catalog: {loaded} intents imported"
                if loaded
                else "· catalog already present: kept"
            )

        supervising = threading.Event()
        watcher = threading.Thread(
            target=supervisor.run, args=(supervising,), name="supervisor", daemon=True
        )

        def stop_children() -> None:
            supervising.set()
            if watcher.is_alive():
                watcher.join()
            supervisor.stop()

        stack.callback(stop_children)
        cli = [sys.executable, "-m", "chatda.cli.main"]
        supervisor.spawn("api", [*cli, "serve"], env)
        supervisor.spawn("ingest", [*cli, "ingest"], env)
        supervisor.spawn("scheduler", [*cli, "scheduler"], env)
        supervisor.spawn("feedback", [*cli, "feedback-consumer"], env)
        watcher.start()
        base = f"http://{settings.api_host}:{settings.api_port}"
        _wait_ready(base)
        if demo:
            typer.echo(f"· published {_publish_demo_articles(stack_settings)} demo articles")

        token_note = generated_admin_token or "as configured in CHATDA_ADMIN_TOKEN"
        typer.echo("")
        typer.echo(f"  API docs     {base}/docs")
        typer.echo(f"  admin page   {base}/admin   (token: {token_note})")
        typer.echo(f"  intents      {base}/v1/intents/match?q={quote(SAMPLE_QUERY)}")
        typer.echo(f"  search       {base}/v1/search?q={quote(SAMPLE_QUERY)}")
        typer.echo(f"  metrics      {base}/metrics")
        typer.echo(f"  logs         {logs}")
        typer.echo("  Ctrl-C stops everything; a crashed process is restarted.")

        stopping = False

        def _on_signal(signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        while not stopping:
            time.sleep(0.5)
        typer.echo("· stopping…")
