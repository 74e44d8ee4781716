"""docker-compose.yml: `docker compose config` accepts it, and the stack has the promised shape."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    COMPOSE_FILE,
    REPO,
    assert_pinned,
    compose_command,
    known_env_names,
)

REQUIRED = {
    "CHATDA_ADMIN_TOKEN": "test-admin-token",
    "CHATDA_PUBLISHER_TOKEN": "test-publisher-token",
    "POSTGRES_PASSWORD": "test-db-password",
    "MINIO_ROOT_PASSWORD": "test-minio-password",
}
ENGINES = {"kafka", "etcd", "minio", "milvus", "postgres"}
CHATDA = {"api", "ingest", "indexer", "feedback"}


def run_config(env: dict[str, str], tmp_path: Any) -> subprocess.CompletedProcess[str]:
    """`docker compose config --format json` with only `env` (no .env file, no host variables)."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env}
    return subprocess.run(
        [
            *compose_command(),
            "--project-directory",
            str(REPO),
            "--env-file",
            str(empty_env_file),
            "-f",
            str(COMPOSE_FILE),
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
    )


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = run_config(REQUIRED, tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


# --- the Compose CLI -------------------------------------------------------------------------


def test_compose_config_accepts_the_file(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == ENGINES | CHATDA


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_each_required_variable_is_enforced(missing: str, tmp_path: Any) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    result = run_config(env, tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


def test_secrets_come_from_the_environment(resolved: dict[str, Any]) -> None:
    for name in CHATDA:
        env = resolved["services"][name]["environment"]
        assert env["CHATDA_ADMIN_TOKEN"] == REQUIRED["CHATDA_ADMIN_TOKEN"]
        assert env["CHATDA_PUBLISHER_TOKEN"] == REQUIRED["CHATDA_PUBLISHER_TOKEN"]
        assert env["CHATDA_DATABASE_URL"] == (
            f"postgresql+psycopg://chatda:{REQUIRED['POSTGRES_PASSWORD']}@postgres:5432/chatda"
        )
    milvus = resolved["services"]["milvus"]["environment"]
    minio = resolved["services"]["minio"]["environment"]
    assert milvus["MINIO_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert milvus["MINIO_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    postgres = resolved["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == REQUIRED["POSTGRES_PASSWORD"]


def test_images_are_pinned(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        assert "image" in service, name
        assert_pinned(service["image"])


def test_one_chatda_image_built_once(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert len({services[name]["image"] for name in CHATDA}) == 1
    builders = [name for name in CHATDA if "build" in services[name]]
    assert builders == ["api"]
    build = services["api"]["build"]
    assert build["dockerfile"] == "deploy/Dockerfile"
    assert os.path.samefile(build["context"], REPO)


def test_merged_depends_on(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name in CHATDA:
        deps = services[name]["depends_on"]
        for engine in ("kafka", "milvus", "postgres"):
            assert deps[engine]["condition"] == "service_healthy", (name, engine)
    for name in ("ingest", "indexer", "feedback"):
        assert services[name]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["ingest"]["deploy"]["replicas"] == 2


# --- structure (PyYAML on the file itself) ---------------------------------------------------


def test_services_present(raw: dict[str, Any]) -> None:
    assert set(raw["services"]) == ENGINES | CHATDA


def test_healthchecks(raw: dict[str, Any]) -> None:
    services = raw["services"]
    for name in ENGINES | {"api", "ingest"}:
        check = services[name].get("healthcheck")
        assert check and check["test"] and not check.get("disable"), name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])  # healthy = ready
    assert "kafka-broker-api-versions" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "9091/healthz" in " ".join(services["milvus"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    # the scheduler serves no HTTP: the image's /readyz HEALTHCHECK must not mark it unhealthy
    assert services["indexer"]["healthcheck"] == {"disable": True}


def test_depends_on_healthy_engines(raw: dict[str, Any]) -> None:
    services = raw["services"]
    for name in CHATDA:
        deps = services[name]["depends_on"]
        assert {"kafka", "milvus", "postgres"} <= set(deps), name
        assert all(dep["condition"] == "service_healthy" for dep in deps.values()), name
    milvus_deps = services["milvus"]["depends_on"]
    assert {k: v["condition"] for k, v in milvus_deps.items()} == {
        "etcd": "service_healthy",
        "minio": "service_healthy",
    }


def test_roles(raw: dict[str, Any]) -> None:
    services = raw["services"]
    assert services["api"]["command"][0] == "serve"
    assert services["api"]["ports"] == ["${CHATDA_API_PUBLISH:-8000}:8000"]
    assert services["ingest"]["command"][0] == "ingest"
    assert services["ingest"]["deploy"]["replicas"] == 2
    assert services["indexer"]["command"] == ["scheduler"]
    assert services["feedback"]["command"] == ["feedback-consumer"]
    assert "deploy" not in services["indexer"]  # one scheduler


def test_kafka_is_single_node_kraft(raw: dict[str, Any]) -> None:
    kafka = raw["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert "ZOOKEEPER" not in " ".join(env)


def test_milvus_standalone_layout(raw: dict[str, Any]) -> None:
    services = raw["services"]
    assert services["milvus"]["image"].startswith("milvusdb/milvus:")
    assert services["milvus"]["command"] == ["milvus", "run", "standalone"]
    assert services["etcd"]["image"].startswith("quay.io/coreos/etcd:")
    assert services["minio"]["image"].startswith("minio/minio:")
    env = services["milvus"]["environment"]
    assert env["ETCD_ENDPOINTS"] == "etcd:2379"
    assert env["MINIO_ADDRESS"] == "minio:9000"


def test_stateful_services_have_named_volumes(raw: dict[str, Any]) -> None:
    declared = set(raw["volumes"])
    for name in ENGINES:
        mounts = raw["services"][name]["volumes"]
        sources = {mount.split(":", 1)[0] for mount in mounts}
        assert sources and sources <= declared, name


def test_no_latest_tags_in_file(raw: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert ":latest" not in text
    for name, service in raw["services"].items():
        image = service["image"]
        if image.startswith("${"):  # ${CHATDA_IMAGE:-chatda:0.1.0}
            image = image.split(":-", 1)[1].rstrip("}")
        assert_pinned(image)
        assert "container_name" not in service, name  # would forbid replicas


def test_chatda_environment_names_are_real_settings(raw: dict[str, Any]) -> None:
    known = known_env_names()
    for name in CHATDA:
        chatda_vars = {k for k in raw["services"][name]["environment"] if k.startswith("CHATDA_")}
        assert chatda_vars - known == set(), name
        assert {
            "CHATDA_KAFKA_BOOTSTRAP",
            "CHATDA_MILVUS_URI",
            "CHATDA_DATABASE_URL",
            "CHATDA_ADMIN_TOKEN",
            "CHATDA_PUBLISHER_TOKEN",
        } <= chatda_vars


def test_tokens_are_required_variables() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name in REQUIRED:
        assert f"${{{name}:?" in text, name
