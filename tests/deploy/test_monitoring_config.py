"""deploy/grafana/chatda-dashboard.json and deploy/prometheus/*.yml, validated offline.

The dashboard's structure is checked as Grafana reads it (panels, grid, targets, the
datasource variable), and every metric a panel queries must be served by a running chatda
process: the API (the search tests' app), and the ingest worker, the scheduler and the
feedback consumer started as their real commands with their metrics ports, scraped over HTTP.
Those three bind the configured metrics host and nothing else (``chatda up`` keeps them on
loopback; containers set ``0.0.0.0``). A renamed metric, or a panel for a metric nothing
exports, fails here. The scrape configs are checked for structure (promtool is not installed
here) and against the ports and the metrics host that docker-compose.yml and deploy/k8s give
each process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.server import free_port
from tests.deploy.support import COMPOSE_FILE, DEPLOY, K8S, REPO
from tests.search.conftest import (  # noqa: F401 (fixtures)
    articles_alias,
    corpus_rows,
    search_client,
)

DASHBOARD = DEPLOY / "grafana" / "chatda-dashboard.json"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
PROMETHEUS_K8S = DEPLOY / "prometheus" / "kubernetes.yml"
SERVICES = {"api", "ingest", "indexer", "feedback"}
# Another loopback address: a server bound to it does not answer on 127.0.0.1, one bound to
# every interface (0.0.0.0) does.
METRICS_HOST = "127.0.0.2"
METRIC = re.compile(r"\bchatda_[a-z0-9_]+\b")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "info": ("_info",),
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def graph_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_dashboard_structure(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
    for panel in graph_panels(dashboard):
        assert panel["title"] and panel["type"] in {"timeseries", "stat", "table", "gauge"}
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert METRIC.search(expr), (panel["title"], expr)
            for left, right in ("()", "[]", "{}"):
                assert expr.count(left) == expr.count(right), (panel["title"], expr)


def test_dashboard_covers_what_the_issue_asks(dashboard: dict[str, Any]) -> None:
    """HTTP by route and status with latency, search per source and partial answers, intents
    per answer, ingest throughput, lag and dead letters, catalog and index versions."""
    used = {
        m for p in graph_panels(dashboard) for t in p["targets"] for m in METRIC.findall(t["expr"])
    }
    assert {
        "chatda_http_requests_total",
        "chatda_http_request_duration_seconds_bucket",
        "chatda_search_source_total",
        "chatda_search_source_seconds_bucket",
        "chatda_search_answers_total",
        "chatda_search_intents_passed_sum",
        "chatda_ingest_records_total",
        "chatda_ingest_partition_lag",
        "chatda_ingest_dead_letters_total",
        "chatda_catalog_version",
        "chatda_served_index_info",
        "chatda_job_runs_total",
        "chatda_feedback_consumer_lag",
    } <= used


def exported_names(exposition: str) -> set[str]:
    """Every series name a query may use: the samples present, and for a labelled family
    with no child yet, the names its type gives its samples."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {s.name for s in family.samples}
        names.add(family.name)
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ())}
    return names


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``chatda COMMAND`` as its own process (its own session, output discarded)."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *command],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _scrape(process: subprocess.Popen, host: str, port: int, deadline: float) -> str:
    """The /metrics text of ``process`` once it serves it."""
    while True:
        assert process.poll() is None, f"{process.args} exited with {process.returncode}"
        try:
            response = httpx.get(f"http://{host}:{port}/metrics", timeout=2)
            if response.status_code == 200:
                return response.text
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{process.args} never served /metrics"
        time.sleep(0.25)


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


class Served(NamedTuple):
    names: dict[str, set[str]]
    """metric names per service, from each running process's /metrics"""
    on_127_0_0_1: dict[str, bool]
    """per service but the API: whether its metrics port also accepted on 127.0.0.1"""


@pytest.fixture(scope="module")
def served(
    search_client,  # noqa: F811
    kafka_bootstrap: str,
    milvus_uri: str,
    models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """The running processes' metrics, served on ``CHATDA_METRICS_HOST=METRICS_HOST``."""
    search_client.get("/v1/search", params={"q": "환전"})
    names = {"api": exported_names(search_client.get("/metrics").text)}
    on_127_0_0_1 = {}
    base = {
        "CHATDA_METRICS_HOST": METRICS_HOST,
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_DEVICE": "cpu",
        "CHATDA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CHATDA_MILVUS_URI": milvus_uri,
        "CHATDA_JOBS": json.dumps({"reconcile-outbox": "off", "aggregate-feedback": "off"}),
    }
    suffix = str(time.monotonic_ns())
    started: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        for service, command, port_env in (
            ("indexer", ["scheduler"], "CHATDA_SCHEDULER_METRICS_PORT"),
            ("feedback", ["feedback-consumer"], "CHATDA_FEEDBACK_METRICS_PORT"),
            ("ingest", ["ingest", "--metrics-port", "{port}"], None),
        ):
            port = free_port()
            env = {
                **base,
                "CHATDA_DATA_DIR": str(tmp_path_factory.mktemp(service)),
                "CHATDA_ARTICLES_TOPIC": f"articles-monitoring-{suffix}",
                "CHATDA_EVENTS_TOPIC": f"events-monitoring-{suffix}",
            }
            if port_env:
                env[port_env] = str(port)
            started[service] = (_start([a.format(port=port) for a in command], env), port)
        deadline = time.monotonic() + 120
        for service, (process, port) in started.items():
            names[service] = exported_names(_scrape(process, METRICS_HOST, port, deadline))
            on_127_0_0_1[service] = _accepts("127.0.0.1", port)
    finally:
        for process, _ in started.values():
            _stop(process)
    yield Served(names, on_127_0_0_1)


def test_every_panel_metric_is_served(dashboard: dict[str, Any], served: Served) -> None:
    everything = set().union(*served.names.values())
    missing = {
        (panel["title"], metric)
        for panel in graph_panels(dashboard)
        for target in panel["targets"]
        for metric in METRIC.findall(target["expr"])
        if metric not in everything
    }
    assert not missing, f"panels query metrics no chatda process serves: {sorted(missing)}"


def test_each_service_serves_its_own_metrics(served: Served) -> None:
    assert "chatda_http_requests_total" in served.names["api"]
    assert "chatda_ingest_partition_lag" in served.names["ingest"]
    assert "chatda_job_runs_total" in served.names["indexer"]
    assert "chatda_feedback_records_total" in served.names["feedback"]
    assert "chatda_http_requests_total" not in served.names["indexer"]


def test_metrics_servers_bind_the_configured_host_only(served: Served) -> None:
    """They answered on METRICS_HOST (the scrape above) and not on another address: ``chatda
    up`` listed them as 127.0.0.1 while they listened on every interface."""
    assert served.on_127_0_0_1 == {"indexer": False, "feedback": False, "ingest": False}


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def _metrics_port(service: dict[str, Any]) -> int:
    """The port a compose service serves /metrics on, from its command or environment."""
    command = service.get("command", [])
    if "--metrics-port" in command:
        return int(command[command.index("--metrics-port") + 1])
    env = service.get("environment", {})
    for key in ("CHATDA_SCHEDULER_METRICS_PORT", "CHATDA_FEEDBACK_METRICS_PORT", "CHATDA_API_PORT"):
        if key in env:
            return int(env[key])
    raise AssertionError(f"no metrics port in {service}")


def test_prometheus_scrapes_every_compose_service_on_its_port() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d+[smh]", config["global"]["scrape_interval"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert len(jobs) == len(config["scrape_configs"]), "job names must be unique"
    assert set(jobs) == {f"chatda-{s}" for s in SERVICES}
    services = _compose()["services"]
    for service in SERVICES:
        job = jobs[f"chatda-{service}"]
        assert job["metrics_path"] == "/metrics"
        targets: list[tuple[str, int]] = []
        for sd in job.get("dns_sd_configs", []):
            assert sd["type"] == "A"
            targets += [(name, sd["port"]) for name in sd["names"]]
        for static in job.get("static_configs", []):
            targets += [
                (t.rpartition(":")[0], int(t.rpartition(":")[2])) for t in static["targets"]
            ]
        assert targets, service
        for host, port in targets:
            assert host == service, "targets are compose service names"
            assert port == _metrics_port(services[service]), (service, port)
    assert "dns_sd_configs" in jobs["chatda-ingest"], "each ingest replica is its own target"


def test_containers_serve_metrics_to_prometheus() -> None:
    """The default metrics host is loopback, which Prometheus in another container or pod
    cannot reach: compose and the k8s configmap (every Deployment's envFrom) set 0.0.0.0."""
    services = _compose()["services"]
    for service in SERVICES - {"api"}:
        assert services[service]["environment"]["CHATDA_METRICS_HOST"] == "0.0.0.0", service
    configmap = yaml.safe_load((K8S / "configmap.yaml").read_text(encoding="utf-8"))
    assert configmap["data"]["CHATDA_METRICS_HOST"] == "0.0.0.0"
    for name in SERVICES - {"api"}:
        deployment = next(
            d
            for d in yaml.safe_load_all((K8S / f"{name}.yaml").read_text(encoding="utf-8"))
            if d and d["kind"] == "Deployment"
        )
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        sources = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
        assert configmap["metadata"]["name"] in sources, name
        assert "CHATDA_METRICS_HOST" not in {e["name"] for e in container.get("env", [])}, name


def test_kubernetes_scrape_config_keeps_the_annotated_chatda_pods() -> None:
    config = yaml.safe_load(PROMETHEUS_K8S.read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    relabels = job["relabel_configs"]
    kept = {tuple(r["source_labels"]): r["regex"] for r in relabels if r.get("action") == "keep"}
    assert kept[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)] == "true"
    assert kept[("__meta_kubernetes_pod_label_app_kubernetes_io_part_of",)] == "chatda"
    address = next(r for r in relabels if r.get("target_label") == "__address__")
    rewritten = re.sub(
        f"^(?:{address['regex']})$",
        address["replacement"].replace("$", "\\"),
        "10.0.0.7:8000;9100",  # __address__ ; the pod's prometheus.io/port
    )
    assert rewritten == "10.0.0.7:9100"
    for name in ("api", "ingest", "indexer", "feedback"):
        deployment = next(
            d
            for d in yaml.safe_load_all((K8S / f"{name}.yaml").read_text(encoding="utf-8"))
            if d and d["kind"] == "Deployment"
        )
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert template["metadata"]["labels"]["app.kubernetes.io/component"] == name
        port = int(annotations["prometheus.io/port"])
        (container,) = template["spec"]["containers"]
        declared = {p["containerPort"] for p in container.get("ports", [])}
        assert port in declared, (name, port)
