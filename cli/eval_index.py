"""The private index ``chatda eval --mode documents`` evaluates over: the corpus published
through Kafka and indexed by a real ingest worker, its own process.

An embedded broker and milvus-lite server are started when none is configured; topic, group
and alias are private to the run, so evaluating next to a live installation touches nothing of
it. Starting those processes is the CLI's: the evaluation library only receives the index
(``chatda.evaluation.documents_eval.IndexCorpus``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pymilvus import MilvusClient

from chatda.articles.message import ArticleMessage
from chatda.articles.progress import wait_until_indexed
from chatda.articles.publisher import Publisher
from chatda.models.encoder import Encoder
from chatda.process import ManagedProcess
from chatda.search.articles import ArticleIndex
from chatda.settings import Settings


def _start_worker(
    env: dict[str, str], topic: str, group: str, alias: str, log: Path
) -> ManagedProcess:
    """The run's ingest worker, stopped by the kernel too if this process dies first."""
    argv = [
        sys.executable, "-m", "cli.main", "ingest",
        "--topic", topic,
        "--group", group,
        "--alias", alias,
        "--dead-letter-topic", f"{topic}-dlq",
    ]  # fmt: skip
    worker = ManagedProcess("eval-ingest", argv, log_path=log, env=env, die_with_parent=True)
    worker.spawn()
    return worker


@contextmanager
def private_index(
    messages: list[ArticleMessage],
    encoder: Encoder,
    settings: Settings,
    timeout_s: float = 3600,
) -> Iterator[ArticleIndex]:
    """Index ``messages`` with ``encoder``'s model under names of their own and yield the
    connected index; on leaving, the index is closed and what was started for it stopped."""
    from chatda.broker.tansu import TansuBroker
    from chatda.storage.milvus_server import MilvusLiteServer

    run = uuid.uuid4().hex[:8]
    topic, group, alias = f"eval-{run}", f"eval-{run}", f"eval_{run}"
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatda-eval-")))
        bootstrap = settings.kafka_bootstrap or stack.enter_context(TansuBroker()).bootstrap
        milvus_uri = (
            settings.milvus_uri or stack.enter_context(MilvusLiteServer(tmp / "milvus")).uri
        )
        env = {
            **os.environ,
            "CHATDA_KAFKA_BOOTSTRAP": bootstrap,
            "CHATDA_MILVUS_URI": milvus_uri,
            "CHATDA_DATA_DIR": str(tmp),
            "CHATDA_MODELS_DIR": str(settings.models_dir.resolve()),
            "CHATDA_MODEL_NAME": encoder.manifest.name,
            "CHATDA_MODEL_VERSION": encoder.manifest.version,
        }
        with Publisher(bootstrap, topic, settings.article_partitions) as publisher:
            publisher.publish_many(messages)
        worker = _start_worker(env, topic, group, alias, tmp / "ingest.log")
        probe = MilvusClient(uri=milvus_uri)
        stack.callback(probe.close)
        try:
            wait_until_indexed(bootstrap, probe, group, alias, topic, timeout_s)
        except BaseException:
            if worker.returncode is not None:
                tail = (tmp / "ingest.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"the eval's ingest worker exited with {worker.returncode}:\n{tail}"
                ) from None
            raise
        finally:
            worker.stop(timeout_s=60)  # SIGTERM: the worker finishes its batch and commits

        index = ArticleIndex(milvus_uri, tmp, alias)
        if not index.connect():
            raise RuntimeError(f"cannot reach Milvus at {milvus_uri}")
        stack.callback(index.close)
        yield index
