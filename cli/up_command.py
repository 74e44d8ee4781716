"""``chatda up`` (what ``make run`` calls): the whole local stack under one supervisor.

Embedded engines are started only when no external ones are configured: the Tansu broker and a
milvus-lite server. Then the API, one ingest worker, the indexer scheduler and the feedback
consumer run as separate processes under ``cli.supervisor``: a child that crashes (the
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
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import typer

from chatda.process import ServerStartError, ensure_port_free, free_port
from chatda.settings import Settings, get_settings

if TYPE_CHECKING:
    from pymilvus import MilvusClient

log = logging.getLogger(__name__)

SAMPLE_QUERY = "해외로 돈 보내고 싶어"


class _Stopped(Exception):
    """Ctrl-C (or SIGTERM) arrived while ``up`` was still starting: unwind in order."""


class _StopRequest:
    """The stop signal as a flag that every wait of ``up`` checks: a signal never lands as a
    KeyboardInterrupt traceback in the middle of a start-up step."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGINT, lambda *_: self.event.set())
        signal.signal(signal.SIGTERM, lambda *_: self.event.set())

    def sleep(self, seconds: float) -> None:
        if self.event.wait(seconds):
            raise _Stopped


class _Progress:
    """One line each time what ``up`` waits for changes, and a reminder every ``every_s``."""

    def __init__(self, label: str, every_s: float = 10.0) -> None:
        self.label = label
        self.every_s = every_s
        self.started = time.monotonic()
        self._last: str | None = None
        self._last_at = 0.0

    def show(self, state: str) -> None:
        now = time.monotonic()
        if state != self._last or now - self._last_at >= self.every_s:
            typer.echo(f"· {self.label}: {state} ({now - self.started:.0f} s)")
            self._last, self._last_at = state, now


def _wait_ready(base: str, stop: _StopRequest, timeout_s: float = 600) -> dict[str, object]:
    """Until ``/readyz`` says the API can serve (model and catalog loaded, Milvus answering),
    showing what it still waits for; then ``/healthz``'s description (the catalog's size).
    A crashed API is restarted by the supervisor meanwhile; only the deadline gives up."""
    progress = _Progress("API starting")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/readyz", timeout=2)
            if answer.status_code == 200:
                health: dict[str, object] = httpx.get(f"{base}/healthz", timeout=2).json()
                return health
            waiting = answer.json().get("error", {}).get("dependencies", {})
            progress.show(
                ", ".join(
                    f"{name} {dep.get('detail')}"
                    for name, dep in waiting.items()
                    if dep.get("required") and not dep.get("up")
                )
                or "checking"
            )
        except (httpx.HTTPError, ValueError, AttributeError):
            progress.show("loading the model")
        stop.sleep(0.5)
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


def _wait_indexed(settings: Settings, stop: _StopRequest, timeout_s: float = 900) -> int | None:
    """Until every article accepted so far is in the index, showing the ingest lag; then how
    many articles search finds. None when that did not happen within ``timeout_s``."""
    from chatda.articles.progress import wait_until_indexed
    from chatda.storage.milvus_client import connect

    assert settings.kafka_bootstrap and settings.milvus_uri
    progress = _Progress("indexing articles")

    def show(lag: int | None) -> None:
        progress.show("waiting for the ingest worker" if lag is None else f"{lag} to go")
        if stop.event.is_set():
            raise _Stopped

    client = connect(settings.milvus_uri, settings.data_dir)
    try:
        wait_until_indexed(
            settings.kafka_bootstrap,
            client,
            settings.ingest_group_id,
            settings.articles_alias,
            settings.articles_topic,
            timeout_s=timeout_s,
            poll_s=0.5,
            on_lag=show,
        )
        return _searchable_articles(client, settings.articles_alias)
    except TimeoutError as exc:
        typer.echo(f"· not ready: {exc}; see the ingest log", err=True)
        return None
    finally:
        client.close()


def _searchable_articles(client: MilvusClient, alias: str) -> int:
    """Articles in the collection the alias serves: rows are chunks, each article has a
    chunk 0."""
    (row,) = client.query(
        alias, filter="chunk_no == 0", output_fields=["count(*)"], consistency_level="Strong"
    )
    return int(row["count(*)"])


def fill_tokens(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """Generate the admin and publisher tokens the operator did not configure, into ``env``.

    Returns the generated ones by variable name, the only ones ``up`` may print: a token
    configured in the environment or ``.env`` is the operator's secret and never reaches the
    terminal.
    """
    generated = {}
    for variable, configured in (
        ("CHATDA_ADMIN_TOKEN", settings.admin_token),
        ("CHATDA_PUBLISHER_TOKEN", settings.publisher_token),
    ):
        if configured is None or not configured.get_secret_value():
            generated[variable] = env[variable] = secrets.token_urlsafe(16)
    return generated


def _token_line(generated: dict[str, str], variable: str) -> str:
    token = generated.get(variable)
    return f"token {token}" if token else f"token as configured in {variable}"


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


DEMO_ARTICLES_MARK = "demo-articles.json"
"""In the data dir: the demo articles were accepted once; they are never published again."""


def _publish_demo_once(settings: Settings) -> str:
    """Publish the demo articles unless they were published before over this data dir.

    A record in the data dir, written once the outbox holds every demo article (so a crash
    before it only publishes the same ids again, and a crash after it loses nothing: the
    outbox sends them). Not "the alias has no collection yet": the first worker creates the
    collection before anything is published, and an index the operator emptied on purpose
    must stay empty.
    """
    mark = settings.data_dir / DEMO_ARTICLES_MARK
    if mark.exists():
        return f"demo articles published before ({mark.name}): kept as the operator left them"
    count = _publish_demo_articles(settings)
    mark.write_text(
        json.dumps({"articles": count, "published_at": time.time()}) + "\n", encoding="utf-8"
    )
    return f"published {count} demo articles"


def up(
    demo: bool = typer.Option(True, help="load the demo catalog and publish the demo articles"),
) -> None:
    """Run broker, Milvus, API, ingest worker and scheduler locally until Ctrl-C."""
    from chatda.broker.tansu import TansuBroker
    from chatda.local_stack import LocalStack, remove_stack, running_stack, write_stack
    from chatda.storage.milvus_server import MilvusLiteServer
    from cli.supervisor import Supervisor

    settings = Settings()  # as configured: never the addresses of a stack already running
    data_dir = settings.data_dir.resolve()
    running = running_stack(data_dir)
    if running is not None:
        typer.echo(
            f"error: chatda up (pid {running.pid}) already runs over {data_dir}, "
            f"API at {running.api_url}; stop it first or use another CHATDA_DATA_DIR",
            err=True,
        )
        raise typer.Exit(1)
    base = f"http://{settings.api_host}:{settings.api_port}"
    try:
        # else the API child would crash-loop on the bind (its log says why, the console not),
        # while the readiness poll and the banner described whatever already answers there
        ensure_port_free(settings.api_host, settings.api_port, "the API")
    except ServerStartError as exc:
        typer.echo(
            f"error: {exc} (another chatda up, or another server); "
            "stop it, or set CHATDA_API_PORT to a free port",
            err=True,
        )
        raise typer.Exit(1) from exc
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CHATDA_DATA_DIR"] = str(data_dir)
    generated = fill_tokens(settings, env)
    stop = _StopRequest()
    stop.install()

    supervisor = Supervisor(echo=lambda line: typer.echo(line, err=True))
    try:
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
                update={
                    "data_dir": data_dir,
                    "kafka_bootstrap": bootstrap,
                    "milvus_uri": milvus_uri,
                }
            )
            addresses = write_stack(
                data_dir,
                LocalStack(
                    pid=os.getpid(), kafka_bootstrap=bootstrap, milvus_uri=milvus_uri, api_url=base
                ),
            )
            stack.callback(remove_stack, data_dir, os.getpid())
            typer.echo(f"· addresses for the CLI in {addresses}")
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
                typer.echo("· stopping: services first, then the engines")
                supervising.set()
                if watcher.is_alive():
                    watcher.join()
                supervisor.stop()

            stack.callback(stop_children)
            cli = [sys.executable, "-m", "cli.main"]
            # every service serves /metrics; the API on its own port, the others on free ones
            metrics = {name: free_port() for name in ("ingest", "scheduler", "feedback")}
            env["CHATDA_SCHEDULER_METRICS_PORT"] = str(metrics["scheduler"])
            env["CHATDA_FEEDBACK_METRICS_PORT"] = str(metrics["feedback"])
            for name, command in (
                ("api", ["serve"]),
                ("ingest", ["ingest", "--metrics-port", str(metrics["ingest"])]),
                ("scheduler", ["scheduler"]),
                ("feedback", ["feedback-consumer"]),
            ):
                supervisor.spawn(name, [*cli, *command], env, log_path=logs / f"{name}.log")
            watcher.start()
            health = _wait_ready(base, stop)
            if demo:
                typer.echo(f"· {_publish_demo_once(stack_settings)}")
            articles = _wait_indexed(stack_settings, stop)

            typer.echo("")
            typer.echo(f"  API docs     {base}/docs")
            typer.echo(
                f"  admin page   {base}/admin   ({_token_line(generated, 'CHATDA_ADMIN_TOKEN')})"
            )
            typer.echo(
                f"  publishing   POST {base}/v1/articles   "
                f"({_token_line(generated, 'CHATDA_PUBLISHER_TOKEN')})"
            )
            typer.echo(f"  intents      {base}/v1/intents/match?q={quote(SAMPLE_QUERY)}")
            typer.echo(f"  search       {base}/v1/search?q={quote(SAMPLE_QUERY)}")
            typer.echo(
                f"  metrics      {base}/metrics   "
                + "   ".join(
                    f"{n} http://{settings.metrics_host}:{p}/metrics" for n, p in metrics.items()
                )
            )
            typer.echo(f"  Kafka        {bootstrap}")
            typer.echo(f"  Milvus       {milvus_uri}")
            typer.echo(f"  logs         {logs}/<process>.log")
            typer.echo("  Ctrl-C stops everything; a crashed process is restarted.")
            if articles is not None:
                catalog = health.get("catalog")
                intents = catalog.get("intents") if isinstance(catalog, dict) else "?"
                typer.echo(f"ready: {intents} intents, {articles} articles searchable")
            stop.event.wait()
    except _Stopped:
        pass
    typer.echo("· stopped")
