"""Rollback and garbage collection of article collections behind the alias.

Collections are never modified in place: a build is a new collection, the alias moves, and the
previous ones stay for `rollback` until `gc` drops the oldest. Names sort by build time within a
model (``articles__<model>__<UTC stamp>``), so "older than the serving one" is a name order.
"""

from __future__ import annotations

from pymilvus import MilvusClient

from chatda.models.registry import ModelRegistry
from chatda.storage.articles_schema import (
    alias_target,
    aliased_collections,
    ensure_alias,
    list_article_collections,
)
from chatda.storage.index_models import collection_model


class IndexStateError(RuntimeError):
    """The index is not in a state the command can act on; nothing was changed."""


def _stamp(name: str) -> str:
    return name.rsplit("__", 1)[-1]


def _older(client: MilvusClient, target: str) -> list[str]:
    """Article collections built before ``target`` that no alias serves, newest first.

    A collection another alias serves (a second deployment or an evaluation sharing this
    Milvus) is someone's live index, not an earlier build of this one: never a rollback
    target, never garbage.
    """
    served = aliased_collections(client)
    return sorted(
        (
            n
            for n in list_article_collections(client)
            if _stamp(n) < _stamp(target) and n not in served
        ),
        key=_stamp,
        reverse=True,
    )


def rollback(client: MilvusClient, registry: ModelRegistry, alias: str) -> tuple[str, str]:
    """Point the alias at the previous build whose model is registered; returns (from, to).

    Any registered model will do: the API and the ingest workers follow the model of the
    collection the alias serves. Nothing published since is lost either: the workers rejoin
    the previous collection's consumer group, which resumes where they left it, and catch it up.
    """
    target = alias_target(client, alias)
    if target is None:
        raise IndexStateError(f"alias {alias!r} does not exist; nothing to roll back")
    previous = [n for n in _older(client, target) if _loadable(client, registry, n)]
    if not previous:
        raise IndexStateError(f"no earlier collection of a registered model than {target}")
    ensure_alias(client, alias, previous[0])
    return target, previous[0]


def _loadable(client: MilvusClient, registry: ModelRegistry, name: str) -> bool:
    model = collection_model(client, name, registry)
    if model is None or "@" not in model:
        return False
    model_name, version = model.split("@", 1)
    return registry.exists(model_name, version)


def gc(client: MilvusClient, alias: str, keep: int) -> list[str]:
    """Drop collections older than the serving one beyond the ``keep`` newest; returns them.

    Collections newer than the serving one are left alone: they may be a build in progress.
    """
    if keep < 0:
        raise ValueError("keep must be >= 0")
    target = alias_target(client, alias)
    if target is None:
        raise IndexStateError(f"alias {alias!r} does not exist; refusing to guess what serves")
    dropped = _older(client, target)[keep:]
    for name in dropped:
        client.drop_collection(name)
    return dropped
