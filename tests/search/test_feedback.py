"""``/v1/feedback``: validation, the unknown-query flag, and both ways into the SQL store,
and the consumer's dead letters for records it cannot parse or store."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine, select

from chatda.broker.dead_letter import PoisonRecord
from chatda.broker.kafka import committed_offsets, end_offsets, ensure_topics, make_producer
from chatda.db.engine import upgrade
from chatda.db.tables import search_events
from chatda.feedback.events import Click, FeedbackRecord, Impression, Shown
from chatda.feedback.persist import Persisted, decode_batch, decode_event, store_events
from chatda.feedback.popularity import PopularityStore
from chatda.feedback.store import FeedbackStore
from chatda.search.recent import RecentQueries
from feedback_consumer.consume import run as consume_events
from tests.ingest.helpers import read_topic


def sql_engine(client: TestClient) -> Engine:
    return client.app.state.chatda.store.engine  # type: ignore[attr-defined,no-any-return]


def stored(engine: Engine, event_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(search_events).where(search_events.c.event_id == event_id)
        ).first()
    return dict(row._mapping) if row else None


def query_id(client: TestClient, q: str = "해외송금 수수료") -> str:
    return client.get("/v1/search", params={"q": q, "profile": "patient"}).json()["query_id"]


def impression(qid: str) -> dict[str, Any]:
    return {
        "type": "impression",
        "query_id": qid,
        "shown": [{"id": "fx-fee", "position": 1}, {"id": "2", "position": 2}],
    }


def test_impression_and_click_go_to_sql_without_a_broker(bare_client: TestClient) -> None:
    qid = query_id(bare_client)
    shown = bare_client.post("/v1/feedback", json=impression(qid))
    clicked = bare_client.post(
        "/v1/feedback",
        json={
            "type": "click",
            "query_id": qid,
            "clicked_id": "fx-fee",
            "position": 1,
            "dwell_ms": 5300,
            "kind": "article",
        },
    )
    assert shown.status_code == clicked.status_code == 202
    for response in (shown, clicked):
        assert response.json()["known_query"] is True
        assert response.json()["stored_via"] == "sql"
    engine = sql_engine(bare_client)
    row = stored(engine, shown.json()["event_id"])
    assert row is not None and row["type"] == "impression" and row["query"] == "해외송금 수수료"
    assert row["shown"] == [{"id": "fx-fee", "position": 1}, {"id": "2", "position": 2}]
    row = stored(engine, clicked.json()["event_id"])
    assert row is not None
    assert (row["clicked_id"], row["position"], row["dwell_ms"]) == ("fx-fee", 1, 5300)
    assert row["clicked_kind"] == "article"


def test_unknown_query_id_is_accepted_and_flagged(bare_client: TestClient) -> None:
    response = bare_client.post("/v1/feedback", json=impression(str(uuid.uuid4())))
    assert response.status_code == 202
    assert response.json()["known_query"] is False
    row = stored(sql_engine(bare_client), response.json()["event_id"])
    assert row is not None and row["known_query"] is False and row["query"] is None


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"type": "view", "query_id": "00000000-0000-0000-0000-000000000000"},
        {"type": "click", "query_id": "not-a-uuid", "clicked_id": "a", "position": 1},
        {"type": "click", "query_id": str(uuid.uuid4()), "clicked_id": "a", "position": 0},
        {"type": "click", "query_id": str(uuid.uuid4()), "clicked_id": "a", "position": 10**12},
        {"type": "click", "query_id": str(uuid.uuid4()), "clicked_id": "", "position": 1},
        {"type": "click", "query_id": str(uuid.uuid4()), "clicked_id": "a\nb", "position": 1},
        {
            "type": "click",
            "query_id": str(uuid.uuid4()),
            "clicked_id": "a",
            "position": 1,
            "dwell_ms": -1,
        },
        {
            "type": "click",
            "query_id": str(uuid.uuid4()),
            "clicked_id": "a",
            "position": 1,
            "extra": True,
        },
        {"type": "impression", "query_id": str(uuid.uuid4()), "shown": []},
        {
            "type": "impression",
            "query_id": str(uuid.uuid4()),
            "shown": [{"id": "a", "position": 1}, {"id": "b", "position": 1}],
        },
        {
            "type": "impression",
            "query_id": str(uuid.uuid4()),
            "shown": [{"id": f"d{i}", "position": i + 1} for i in range(201)],
        },
        {"type": "impression", "query_id": str(uuid.uuid4()), "shown": "fx-fee"},
        {"type": "click", "query_id": str(uuid.uuid4()), "clicked_id": "a", "position": True},
        {
            "type": "click",
            "query_id": str(uuid.uuid4()),
            "clicked_id": "a",
            "position": 1,
            "kind": "suggestion",
        },
        {
            "type": "click",
            "query_id": str(uuid.uuid4()),
            "clicked_id": "a",
            "position": 1,
            "dwell_ms": True,
        },
    ],
)
def test_invalid_feedback_is_422(bare_client: TestClient, payload: dict[str, Any]) -> None:
    response = bare_client.post("/v1/feedback", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["message"]


def test_feedback_through_kafka_reaches_sql_via_the_consumer(search_client: TestClient) -> None:
    qid = query_id(search_client, "파킹통장 금리")
    response = search_client.post("/v1/feedback", json=impression(qid))
    assert response.status_code == 202
    assert response.json()["stored_via"] == "kafka" and response.json()["known_query"] is True
    event_id = response.json()["event_id"]
    engine = sql_engine(search_client)
    assert stored(engine, event_id) is None  # only the consumer writes it
    settings = search_client.app.state.chatda.settings  # type: ignore[attr-defined]
    stop = threading.Event()
    worker = threading.Thread(
        target=consume_events,
        args=(
            settings.kafka_bootstrap,
            settings.events_topic,
            f"test-{uuid.uuid4().hex[:6]}",
            FeedbackStore(engine),
            stop,
        ),
        kwargs={
            "dead_letter_topic": f"{settings.events_topic}-dlq",
            "partitions": settings.events_partitions,
        },
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while (row := stored(engine, event_id)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert row is not None and row["query"] == "파킹통장 금리" and row["known_query"] is True


NOW = datetime.now(UTC) + timedelta(seconds=5)


def record(event: Impression | Click, query: str | None = "송금") -> FeedbackRecord:
    return FeedbackRecord(
        event_id=uuid.uuid4(),
        received_at=datetime.now(UTC),
        query=query,
        known_query=query is not None,
        event=event,
    )


@pytest.fixture()
def store(tmp_path) -> FeedbackStore:
    engine = create_engine(f"sqlite:///{tmp_path / 'feedback.db'}")
    upgrade(engine)
    return FeedbackStore(engine)


def test_store_ignores_replayed_events(store: FeedbackStore) -> None:
    event = Click(type="click", query_id=uuid.uuid4(), clicked_id="a", position=1)
    first = record(event)
    assert store.save([first]) == 1
    assert store.save([first, record(event)]) == 1  # the replay is skipped, the new one kept


def consumed(values: list[bytes | None]) -> list[ConsumerRecord]:
    """``values`` as the consumer polls them: offsets 0.. of partition 0 of search-events."""
    return [
        ConsumerRecord("search-events", 0, None, offset, 0, 0, None, value, [], None, 0, 0, -1)
        for offset, value in enumerate(values)
    ]


def persist(store: FeedbackStore, records: list[ConsumerRecord]) -> Persisted:
    """One batch as the consumer writes it: decoded once, then stored."""
    return store_events(store, *decode_batch(records))


def reasons(poison: list[tuple[ConsumerRecord, PoisonRecord]]) -> list[tuple[int, str]]:
    return [(record.offset, error.reason) for record, error in poison]


def test_records_that_do_not_parse_are_returned_for_the_dead_letters(
    store: FeedbackStore,
) -> None:
    good = record(
        Impression(type="impression", query_id=uuid.uuid4(), shown=[Shown(id="a", position=1)])
    )
    values = [b"not json", None, b'{"event_id": "x"}', good.model_dump_json().encode()]
    outcome = persist(store, consumed(values))
    assert outcome.stored == 1
    assert reasons(outcome.poison) == [(0, "json"), (1, "schema"), (2, "schema")]
    assert "event_id" in outcome.poison[2][1].detail


def click_record(query: str | None = "송금") -> FeedbackRecord:
    return record(
        Click(type="click", query_id=uuid.uuid4(), clicked_id="a", position=1), query=query
    )


def refuse_query(store: FeedbackStore, query: str) -> None:
    """Make the real SQLite store refuse rows carrying ``query``, the way PostgreSQL refuses a
    value it cannot hold (a NUL in text): SQLite itself accepts every value the model lets by."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_query BEFORE INSERT ON search_events "
            f"WHEN NEW.query = '{query}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )


def test_an_event_the_store_refuses_is_returned_for_the_dead_letters(
    store: FeedbackStore,
) -> None:
    refuse_query(store, "거부")
    first, refused, last = click_record(), click_record("거부"), click_record()
    values = [r.model_dump_json().encode() for r in (first, refused, last)]
    outcome = persist(store, consumed(values))
    assert outcome.stored == 2
    assert reasons(outcome.poison) == [(1, "store")]
    assert "refused" in outcome.poison[0][1].detail
    assert stored(store.engine, str(first.event_id)) is not None
    assert stored(store.engine, str(last.event_id)) is not None
    assert stored(store.engine, str(refused.event_id)) is None


@pytest.mark.parametrize(
    "change",
    [
        {"query": "송\x00금"},  # PostgreSQL cannot store it
        {"received_at": "0001-01-01T00:00:00+14:00"},  # year 0 in UTC: no read gets it back
        {"received_at": "9999-12-31T23:59:59-12:00"},  # year 10000 in UTC
    ],
)
def test_records_the_store_could_not_keep_do_not_parse(change: dict[str, str]) -> None:
    value = json.dumps(click_record().model_dump(mode="json") | change).encode()
    with pytest.raises(PoisonRecord) as info:
        decode_event(value)
    assert info.value.reason == "schema"


def test_received_at_is_kept_in_utc() -> None:
    value = click_record().model_dump(mode="json") | {"received_at": "2026-06-01T09:00:00+09:00"}
    decoded = decode_event(json.dumps(value).encode())
    assert decoded.received_at == datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    assert decoded.received_at.utcoffset() == timedelta(0)


def publish(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """``values`` at offsets 0.. of ``topic``'s only partition, keyed ``q``."""
    producer = make_producer(bootstrap)
    try:
        offsets = [
            producer.send(topic, key=b"q", value=value).get(timeout=30).offset for value in values
        ]
    finally:
        producer.close()
    assert offsets == list(range(len(values)))


@contextmanager
def consumer_thread(
    bootstrap: str, topic: str, group: str, store: FeedbackStore
) -> Iterator[tuple[threading.Thread, list[BaseException]]]:
    """The consume loop in a thread, with what it raised (nothing, as long as it runs)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            consume_events(
                bootstrap,
                topic,
                group,
                store,
                stop,
                dead_letter_topic=f"{topic}-dlq",
                partitions=1,
            )
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    try:
        yield worker, errors
    finally:
        stop.set()
        worker.join(timeout=30)


def test_consumer_dead_letters_poison_records_on_kafka(
    kafka_bootstrap: str, store: FeedbackStore
) -> None:
    """Real Tansu: records that do not parse, and an event the store refuses, between valid
    events on the only partition. The valid events are stored, each poison record is on the
    dead-letter topic with its reason, bytes and source offset, the consumer keeps running,
    and every offset is committed. (Before, the poison records were logged and their offsets
    committed: lost.)"""
    topic = f"search-events-poison-{uuid.uuid4().hex[:8]}"
    dead_letter_topic = f"{topic}-dlq"
    group = f"test-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_bootstrap, {topic: 1})
    refuse_query(store, "거부")
    first, last = click_record(), click_record()
    poison = {
        1: ("json", b"[" * 100_000 + b"]" * 100_000),  # deeper than any decoder should go
        2: ("json", b"not json \xff"),
        3: ("schema", b'{"event_id": "not a uuid"}'),
        4: ("store", click_record("거부").model_dump_json().encode()),
    }
    values = [first.model_dump_json().encode(), *(v for _, v in poison.values())]
    values.append(last.model_dump_json().encode())
    publish(kafka_bootstrap, topic, values)
    with consumer_thread(kafka_bootstrap, topic, group, store) as (worker, errors):
        deadline = time.monotonic() + 60
        while (
            committed_offsets(kafka_bootstrap, group, topic).get(0) != len(values)
            and time.monotonic() < deadline
        ):
            assert not errors, errors
            time.sleep(0.5)
        assert worker.is_alive() and not errors, errors
    assert committed_offsets(kafka_bootstrap, group, topic) == {0: len(values)}
    assert stored(store.engine, str(first.event_id)) is not None
    assert stored(store.engine, str(last.event_id)) is not None

    assert sum(end_offsets(kafka_bootstrap, dead_letter_topic).values()) == len(poison)
    envelopes = [json.loads(r.value) for r in read_topic(kafka_bootstrap, dead_letter_topic, 4)]
    by_offset = {e["source"]["offset"]: e for e in envelopes}
    assert set(by_offset) == set(poison)
    for offset, (reason, value) in poison.items():
        envelope = by_offset[offset]
        assert envelope["error"]["reason"] == reason and envelope["error"]["message"]
        assert envelope["source"]["topic"] == topic and envelope["source"]["partition"] == 0
        assert base64.b64decode(envelope["value_b64"]) == value
        assert base64.b64decode(envelope["key_b64"]) == b"q"


def sql_retries() -> float:
    return REGISTRY.get_sample_value("chatda_feedback_retries_total", {"cause": "sql"}) or 0.0


def test_consumer_waits_out_an_sql_outage_and_stores_every_event_once(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Real Tansu and SQLite: while another connection holds the database locked (writes get
    the ``OperationalError`` a database that is away or locked raises), the consumer keeps
    running, counts its retries and commits nothing. Once the lock is released, every event is
    stored exactly once, the record that does not parse and the event the store refuses are
    dead-lettered once each (poison, not retried), and every offset is committed. (Before, the
    error ended the consume loop: the process exited, for its supervisor to restart into the
    same outage.)"""
    path = tmp_path / "feedback.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.2})
    upgrade(engine)
    store = FeedbackStore(engine)
    refuse_query(store, "거부")
    topic = f"search-events-outage-{uuid.uuid4().hex[:8]}"
    group = f"test-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_bootstrap, {topic: 1})
    events = [click_record() for _ in range(4)]
    values = [event.model_dump_json().encode() for event in events]
    values[2:2] = [b"not json", click_record("거부").model_dump_json().encode()]
    before = sql_retries()
    lock = sqlite3.connect(path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        publish(kafka_bootstrap, topic, values)
        with consumer_thread(kafka_bootstrap, topic, group, store) as (worker, errors):
            deadline = time.monotonic() + 60
            while sql_retries() < before + 3:
                assert not errors, errors
                assert time.monotonic() < deadline, "the consumer never retried"
                time.sleep(0.2)
            assert worker.is_alive() and not errors, errors
            assert committed_offsets(kafka_bootstrap, group, topic) == {0: 0}
            lock.execute("ROLLBACK")
            deadline = time.monotonic() + 60
            while committed_offsets(kafka_bootstrap, group, topic) != {0: len(values)}:
                assert not errors, errors
                assert time.monotonic() < deadline, "the consumer never committed the batch"
                time.sleep(0.5)
            assert worker.is_alive() and not errors, errors
    finally:
        lock.close()
    with engine.connect() as conn:
        rows = conn.execute(select(search_events.c.event_id)).scalars().all()
    assert sorted(rows) == sorted(str(event.event_id) for event in events)
    assert sum(end_offsets(kafka_bootstrap, f"{topic}-dlq").values()) == 2
    unparsable = [r for r in caplog.records if "does not parse" in r.getMessage()]
    assert len(unparsable) == 1  # decoded once, however often the store was retried
    engine.dispose()


def test_consumer_stops_at_once_during_an_sql_outage_and_commits_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Real Tansu and SQLite: stop (SIGTERM) while the consumer waits 4 s between attempts on
    a locked database ends the loop within a poll step, not at the end of the wait or the
    outage, and leaves the batch uncommitted for the next start to replay."""
    path = tmp_path / "feedback.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.2})
    upgrade(engine)
    topic = f"search-events-stop-{uuid.uuid4().hex[:8]}"
    group = f"test-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_bootstrap, {topic: 1})
    publish(kafka_bootstrap, topic, [click_record().model_dump_json().encode()])
    before = sql_retries()
    lock = sqlite3.connect(path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        with consumer_thread(kafka_bootstrap, topic, group, FeedbackStore(engine)) as (
            worker,
            errors,
        ):
            deadline = time.monotonic() + 60
            while sql_retries() < before + 4:  # the 4th failure waits 4 s before the 5th try
                assert not errors, errors
                assert time.monotonic() < deadline, "the consumer never retried"
                time.sleep(0.05)
            stopping = time.monotonic()
        assert not worker.is_alive() and not errors, errors
        assert time.monotonic() - stopping < 2.5, "stop waited for the backoff"
    finally:
        lock.close()
    assert committed_offsets(kafka_bootstrap, group, topic) == {0: 0}
    engine.dispose()


def test_popularity_counts_searches_not_events(store: FeedbackStore) -> None:
    one_search = uuid.uuid4()
    many = [Shown(id=f"d{i}", position=i + 1) for i in range(5)]
    store.save(
        [
            record(Impression(type="impression", query_id=one_search, shown=many), "적금")
            for _ in range(5)
        ]
    )
    for _ in range(3):
        store.save(
            [record(Click(type="click", query_id=uuid.uuid4(), clicked_id="a", position=1), "예금")]
        )
    store.save(
        [record(Click(type="click", query_id=uuid.uuid4(), clicked_id="b", position=1), None)]
    )
    popularity = PopularityStore(store.engine)
    report = popularity.refresh(min_searches=1, max_queries=10, half_life_days=30, now=NOW)
    assert (report.queries, report.searches, report.items, report.clicks) == (2, 4, 2, 4)
    loaded = popularity.load(max_queries=10)
    assert [q for q, _ in loaded.queries] == ["예금", "적금"]
    assert [round(n) for _, n in loaded.queries] == [3, 1]  # seconds old: weight ≈ 1 each
    assert loaded.items == pytest.approx({"a": 3.0, "b": 1.0}, rel=1e-3)
    popularity.refresh(min_searches=2, max_queries=10, half_life_days=30, now=NOW)
    assert [q for q, _ in popularity.load(max_queries=10).queries] == ["예금"]  # the floor


def test_popularity_decays_with_age(store: FeedbackStore) -> None:
    def searched(query: str, days_ago: float) -> FeedbackRecord:
        click = Click(type="click", query_id=uuid.uuid4(), clicked_id=query, position=1)
        return record(click, query).model_copy(
            update={"received_at": NOW - timedelta(days=days_ago)}
        )

    store.save([searched("작년 습관", 365) for _ in range(4)])  # 4 × 0.5**(365/30) ≈ 0
    store.save([searched("어제 급상승", 1) for _ in range(2)])
    popularity = PopularityStore(store.engine)
    popularity.refresh(min_searches=2, max_queries=10, half_life_days=30, now=NOW)
    loaded = popularity.load(max_queries=10)
    assert [q for q, _ in loaded.queries] == ["어제 급상승", "작년 습관"]
    assert dict(loaded.queries)["어제 급상승"] == pytest.approx(2 * 0.5 ** (1 / 30))
    assert loaded.items["작년 습관"] < loaded.items["어제 급상승"]
    popularity.refresh(min_searches=2, max_queries=1, half_life_days=30, now=NOW)
    assert popularity.load(max_queries=10).queries == loaded.queries[:1]


def test_recent_queries_forget_the_oldest() -> None:
    recent = RecentQueries(capacity=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    recent.add(a, "가")
    recent.add(b, "나")
    recent.add(c, "다")
    assert (recent.get(a), recent.get(b), recent.get(c), len(recent)) == (None, "나", "다", 2)
