"""The re-index as an operator runs it: settings → options, the target model, the run guard.

``chatda index reindex`` builds for the model it is given (default: the serving model); the
scheduled ``reindex`` job builds only when the serving (approved, promoted) model is not the
one the alias serves. Both run under the job's run guard, so two builds never overlap.
"""

from __future__ import annotations

from sqlalchemy import Engine

from chatda.models.encoder import encoder_loader
from chatda.models.registry import ModelRegistry, parse_ref
from chatda.settings import Settings
from chatda.storage.index_models import served_index
from chatda.storage.milvus_client import connect
from chatda.text.morphemes import default_morphemes
from indexer.history import record_run
from indexer.reindex import ReindexError, ReindexOptions, ReindexReport, reindex

JOB = "reindex"


def options_from(settings: Settings, force: bool = False) -> ReindexOptions:
    if not settings.kafka_bootstrap or not settings.milvus_uri:
        raise ReindexError(
            "re-index needs a Kafka broker and a Milvus server (CHATDA_KAFKA_BOOTSTRAP, "
            "CHATDA_MILVUS_URI); `chatda up` starts both"
        )
    return ReindexOptions(
        bootstrap=settings.kafka_bootstrap,
        milvus_uri=settings.milvus_uri,
        data_dir=settings.data_dir,
        models_dir=settings.models_dir,
        topic=settings.articles_topic,
        alias=settings.articles_alias,
        base_group=settings.ingest_group_id,
        force=force,
    )


def resolve_target(settings: Settings, registry: ModelRegistry, model: str | None) -> str:
    """The ref of a registered model; ModelNotFound before anything is built."""
    name, version = parse_ref(model or f"{settings.model_name}@", settings.model_name)
    return registry.get(name, version).manifest.ref


def reindex_now(
    settings: Settings,
    model: str | None = None,
    *,
    force: bool = False,
    only_if_stale: bool = False,
) -> tuple[str, ReindexReport | None]:
    """Re-index (the caller holds the run guard): the run's detail line and its report, None
    when ``only_if_stale`` found the alias already on the target model.

    Raises ReindexError or ModelNotFound with the alias untouched.
    """
    options = options_from(settings, force)
    registry = ModelRegistry(settings.models_dir)
    target = resolve_target(settings, registry, model)
    client = connect(settings.milvus_uri, settings.data_dir)
    try:
        served = served_index(client, settings.articles_alias, registry)
        if only_if_stale and served is not None and served.model == target:
            return f"index already built with {target}", None
        load = encoder_loader(registry, settings)
        report = reindex(options, client, target, load, default_morphemes())
        return report.summary(), report
    finally:
        client.close()


def reindex_job(settings: Settings, engine: Engine) -> str:
    """The scheduled job: re-index when the serving model is not the one the alias serves."""
    return reindex_now(settings, only_if_stale=True)[0]


def run_guarded(
    settings: Settings, engine: Engine, model: str | None, force: bool
) -> ReindexReport | None:
    """``chatda index reindex``: the same run guard and history as the scheduled job."""
    outcome: list[ReindexReport | None] = [None]

    def work() -> str:
        detail, outcome[0] = reindex_now(settings, model, force=force)
        return detail

    record_run(engine, JOB, "manual", work)
    return outcome[0]
