"""The catalog file (YAML, format version 1): read with line numbers, written stably.

An operator's file is validated entirely before anything is imported; an error names the line
and the field, so a typo at 2 a.m. costs one edit, not a debugging session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from chatda.catalog.errors import InvalidCatalog
from chatda.catalog.models import CatalogFile, Intent, IntentIn


def _line_of(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases (``*name``): a catalog never needs one, and 2,000 aliases of one
    anchored intent with long hints (a 300 KB body) expanded to 380 MB of validation work that
    held the event loop for half a minute before the duplicate ids were even seen."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed in a catalog file",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)


def parse_catalog(text: str, source: str = "<catalog>") -> list[IntentIn]:
    """The intents of a catalog file; ``InvalidCatalog`` (422) for anything malformed.

    PyYAML composes and constructs recursively, so ``[[[[…`` nested a few thousand deep raises
    ``RecursionError``, not ``YAMLError``; no real catalog nests deeper than five levels, so
    that is a malformed file like any other, not a server error. The document is composed
    once; its node tree gives both the data and the line of each field for error messages.
    """
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise InvalidCatalog(f"{where}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise InvalidCatalog(f"{source}: not a catalog: nested too deeply") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InvalidCatalog(f"{source}: expected a mapping with 'version' and 'intents'")
    try:
        parsed = CatalogFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(node, loc)
            field = ".".join(str(p) for p in loc)
            problems.append(f"{source}:{line}: {field}: {err['msg']}")
        raise InvalidCatalog("; ".join(problems), errors=problems) from exc
    if parsed.version != 1:
        raise InvalidCatalog(f"{source}: unsupported catalog format version {parsed.version}")
    return parsed.intents


def read_catalog(path: Path) -> list[IntentIn]:
    return parse_catalog(path.read_text(encoding="utf-8"), str(path))


def dump_catalog(intents: list[Intent] | list[IntentIn]) -> str:
    fields = set(IntentIn.model_fields)
    rows = [{"id": i.id, **i.model_dump(mode="json", include=fields - {"id"})} for i in intents]
    return yaml.safe_dump(
        {"version": 1, "intents": rows}, allow_unicode=True, sort_keys=False, width=100
    )
