"""A small catalog and a store per test; the app fixture shares one API process per module."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chatda.catalog.store import CatalogStore
from chatda.db.engine import make_engine, upgrade
from chatda.settings import Settings
from query.app import create_app

SMALL_CATALOG = """\
version: 1
intents:
  - id: 1
    name: 송금
    service_id: 10
    hints: [다른 계좌나 사용자에게 돈을 보내는 기능, 이체, 계좌 송금, 돈보내기]
  - id: 2
    parent_id: 1
    name: 해외송금
    service_id: 11
    hints: [외국에 있는 계좌로 돈 보내기, 해외 계좌로 송금, 달러 송금하기]
    areas: [SEARCH]
  - id: 3
    name: 환전
    service_id: 20
    hints: [원화를 외화로 바꾸기, 달러 환전, 여행 경비 환전]
    areas: [SEARCH, SUGGEST]
  - id: 4
    name: 대출 금리 비교
    service_id: 30
    hints: [여러 은행 대출 이자 비교, 신용대출 금리, 주택담보대출 이율 비교]
    threshold: 0.99
  - id: 5
    name: 리볼빙 설정
    service_id: 40
    hints: [카드값 일부만 결제하고 나머지 이월, 리볼빙 신청]
    open: false
"""

ADMIN = "test-admin-token"


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(SMALL_CATALOG, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path) -> CatalogStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    return CatalogStore(engine)


def wait_catalog(client: TestClient, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not client.get("/healthz").json()["catalog"]["ready"]:
        assert time.monotonic() < deadline, "catalog never became ready"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def api(models_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("catalog-api")
    catalog = root / "catalog.yaml"
    catalog.write_text(SMALL_CATALOG, encoding="utf-8")
    settings = Settings(
        data_dir=root,
        models_dir_override=models_dir,
        device="cpu",
        catalog_file=catalog,
        admin_token=ADMIN,
        catalog_poll_s=0.5,
    )
    with TestClient(create_app(settings)) as client:
        wait_catalog(client)
        yield client
