"""The catalog store and file format: validation, tree rules, concurrency, all-or-nothing import."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from chatda.catalog.errors import CatalogError, Conflict, IntentNotFound, InvalidCatalog
from chatda.catalog.file_format import dump_catalog, parse_catalog, read_catalog
from chatda.catalog.models import Area, IntentIn, IntentUpdate
from chatda.demo import catalog_path
from tests.catalog.conftest import SMALL_CATALOG


def test_demo_catalog_is_big_enough_and_valid(store) -> None:
    intents = read_catalog(catalog_path())
    assert len(intents) >= 80
    assert all(len(i.hints) >= 3 for i in intents)
    assert sum(len(i.hints) for i in intents) < 1000
    assert store.import_intents(intents) == len(intents)
    assert any(i.parent_id for i in store.list())


def test_import_export_round_trip(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    text = dump_catalog(store.list())
    assert [i.model_dump() for i in parse_catalog(text)] == [
        i.model_dump() for i in parse_catalog(SMALL_CATALOG)
    ]


def test_every_write_bumps_the_catalog_version(store) -> None:
    assert store.version() == 0
    store.import_intents(parse_catalog(SMALL_CATALOG))
    v1 = store.version()
    store.create(IntentIn(id=9, name="적금", hints=["매달 돈 모으기"]))
    assert store.version() == v1 + 1


def test_search_matches_name_hints_and_memo(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    assert [i.id for i in store.list("달러")] == [2, 3]
    assert [i.id for i in store.list("리볼빙")] == [5]


def test_duplicate_id_is_a_conflict(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    with pytest.raises(Conflict, match="already exists"):
        store.create(IntentIn(id=1, name="중복", hints=["x"]))


def test_unknown_parent_and_cycles_are_rejected(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    with pytest.raises(InvalidCatalog, match="parent_id 77"):
        store.create(IntentIn(id=9, parent_id=77, name="고아"))
    current = store.get(1)
    with pytest.raises(InvalidCatalog, match="cycle"):
        store.update(
            1, IntentUpdate(**current.model_dump(exclude={"id", "updated_at"}) | {"parent_id": 2})
        )
    assert store.get(1).parent_id is None


def test_stale_version_is_409_and_nothing_is_overwritten(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    seen = store.get(3)
    fields = seen.model_dump(exclude={"id", "updated_at"})
    store.update(3, IntentUpdate(**fields | {"hints": [*seen.hints, "엔화로 바꾸기"]}))
    with pytest.raises(Conflict, match="changed by someone else"):
        store.update(3, IntentUpdate(**fields | {"name": "덮어쓰기"}))
    after = store.get(3)
    assert after.name == "환전" and "엔화로 바꾸기" in after.hints and after.version == 2


@pytest.mark.parametrize("rewrite", ["replace import", "delete and create"])
def test_a_version_read_before_the_row_was_rewritten_is_409(store, rewrite) -> None:
    """A replace import or a delete and re-create writes the row anew: an editor who read the
    old one must get a conflict, not overwrite the new one (versions restarting at 1 let the
    stale save through with a 200)."""
    store.import_intents(parse_catalog(SMALL_CATALOG))
    seen = store.get(3)
    fields = seen.model_dump(exclude={"id", "updated_at"})
    rewritten = IntentIn(**seen.model_dump(exclude={"updated_at", "version"}) | {"memo": "새로"})
    if rewrite == "replace import":
        store.import_intents([*(i for i in store.list() if i.id != 3), rewritten])
    else:
        store.delete(3)
        store.create(rewritten)
    assert store.get(3).version > seen.version
    with pytest.raises(Conflict, match="changed by someone else"):
        store.update(3, IntentUpdate(**fields | {"name": "덮어쓰기"}))
    assert store.get(3).memo == "새로" and store.get(3).name == "환전"


def test_new_rows_start_at_the_catalog_version(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    created = store.create(IntentIn(id=9, name="적금", hints=["매달 돈 모으기"]))
    assert created.version == store.version()
    assert {i.version for i in store.list() if i.id != 9} == {1}


def test_delete_refuses_parents_and_unknown_ids(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    with pytest.raises(Conflict, match="children"):
        store.delete(1)
    store.delete(2)
    with pytest.raises(IntentNotFound):
        store.get(2)
    with pytest.raises(IntentNotFound):
        store.delete(2)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": ""}, "at least 1 character"),
        ({"name": "   "}, "must not be empty"),
        ({"threshold": 1.5}, "less than or equal to 1"),
        ({"threshold": -0.1}, "greater than or equal to 0"),
        ({"hints": ["x"] * 201}, "at most 200"),
        ({"hints": ["가" * 501]}, "longer than 500"),
        ({"areas": ["BANNER"]}, "SEARCH"),
        ({"areas": []}, "at least 1"),
        ({"id": 0}, "greater than or equal to 1"),
        ({"id": 2**63}, "less than or equal to 9223372036854775807"),
        ({"id": True}, "not a boolean"),
        ({"service_id": -(2**63) - 1}, "greater than or equal to -9223372036854775808"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_bad_intents_are_rejected_with_a_message(fields, message) -> None:
    with pytest.raises(ValidationError, match=message):
        IntentIn(**({"id": 1, "name": "송금"} | fields))


def test_hints_are_normalised_and_deduplicated() -> None:
    item = IntentIn(id=1, name=" 송금\t", hints=["이체", " 이체 ", "", "ＡＴＭ"])
    assert item.name == "송금"
    assert item.hints == ["이체", "ATM"]
    assert item.areas == [Area.SEARCH, Area.RECO, Area.SUGGEST]


def test_malformed_file_names_line_and_field_and_imports_nothing(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    bad = SMALL_CATALOG.replace("    threshold: 0.99", "    threshold: 7")
    with pytest.raises(InvalidCatalog) as err:
        store.import_intents(parse_catalog(bad, "ops.yaml"))
    assert "ops.yaml:" in err.value.message and "intents.3.threshold" in err.value.message
    line = int(err.value.message.split(":")[1])
    assert bad.splitlines()[line - 1].strip() == "threshold: 7"
    assert store.get(4).threshold == 0.99


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("version: 1\nintents: [\n", "not valid YAML"),
        ("- just a list\n", "expected a mapping"),
        ("version: 2\nintents: []\n", "unsupported catalog format version"),
        (  # an alias bomb: 2,000 copies of one anchored intent took 30 s to validate
            "version: 1\nintents:\n- &a {id: 1, name: x, hints: ["
            + "가" * 400
            + "]}\n"
            + "- *a\n" * 2000,
            "<catalog>:4: not valid YAML: aliases",
        ),
    ],
)
def test_unreadable_files(text, fragment) -> None:
    with pytest.raises(InvalidCatalog, match=fragment):
        parse_catalog(text)


def test_import_with_duplicate_ids_or_cycle_writes_nothing(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    before = store.version()
    dup = SMALL_CATALOG + "  - id: 1\n    name: 또송금\n"
    with pytest.raises(InvalidCatalog, match="duplicate"):
        store.import_intents(parse_catalog(dup))
    cycle = SMALL_CATALOG.replace(
        "  - id: 1\n    name: 송금", "  - id: 1\n    parent_id: 2\n    name: 송금"
    )
    with pytest.raises(InvalidCatalog, match="cycle"):
        store.import_intents(parse_catalog(cycle))
    assert store.version() == before and len(store.list()) == 5


def test_merge_import_upserts(store) -> None:
    store.import_intents(parse_catalog(SMALL_CATALOG))
    extra = "version: 1\nintents:\n  - id: 3\n    name: 환전하기\n  - id: 6\n    name: 적금\n"
    store.import_intents(parse_catalog(extra), mode="merge")
    assert store.get(3).name == "환전하기" and store.get(3).version == 2
    assert len(store.list()) == 6


def _at_once(*calls: Callable[[], object]) -> list[BaseException]:
    """Run ``calls`` together; the exceptions other than a clean ``CatalogError`` (409/404/422)."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> BaseException | None:
        barrier.wait()
        try:
            call()
        except CatalogError:
            return None
        except Exception as exc:
            return exc
        return None

    with ThreadPoolExecutor(len(calls)) as pool:
        return [e for e in pool.map(run, calls) if e is not None]


def test_concurrent_writers_see_each_other(store) -> None:
    """Issue #23 item 6: each writer checked the tree on what it read before the other wrote,
    so deleting a parent while another edit attached a child to it broke the foreign key
    (IntegrityError, a 500) instead of one of them answering 409/422."""
    store.create(IntentIn(id=2, name="자식"))
    for _ in range(30):
        store.create(IntentIn(id=1, name="부모"))
        child = store.get(2)
        fields = child.model_dump(exclude={"id", "updated_at", "version"})
        attach = IntentUpdate(**fields | {"parent_id": 1}, version=child.version)
        assert _at_once(lambda: store.delete(1), lambda a=attach: store.update(2, a)) == []
        child = store.get(2)
        if child.parent_id is not None:
            store.update(2, IntentUpdate(**fields | {"parent_id": None}, version=child.version))
        if any(i.id == 1 for i in store.list()):
            store.delete(1)
