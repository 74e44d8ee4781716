"""deploy/k8s: every manifest passes the Kubernetes OpenAPI schemas (strict, offline, from
kubernetes-validate) and the facts the operators rely on hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    DOCKERFILE,
    K8S,
    assert_pinned,
    cli_commands,
    known_env_names,
    kubernetes_validate,
    load_yaml_documents,
)

# Oldest Kubernetes minor still commonly run, and the newest whose schemas the package ships.
K8S_VERSIONS = ("1.29", "latest")
SECRET_KEYS = {"CHATDA_ADMIN_TOKEN", "CHATDA_PUBLISHER_TOKEN", "CHATDA_DATABASE_URL"}


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def all_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in manifest_files() for doc in load_yaml_documents(path)]


DOCS = all_documents()


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [d for _, d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def deployments() -> list[dict[str, Any]]:
    return [d for _, d in DOCS if d["kind"] == "Deployment"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def port_number(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in c["ports"] if p["name"] == port)


# --- schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    "path,doc",
    DOCS,
    ids=[f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in DOCS],
)
def test_schema_valid(path: Path, doc: dict[str, Any], version: str) -> None:
    kv = kubernetes_validate()
    wanted = kv.latest_version() if version == "latest" else version
    try:
        kv.validate(doc, wanted, strict=True)
    except kv.ValidationError as exc:
        pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']} (k8s {wanted}): {exc}")


def test_schema_validation_is_live() -> None:
    """The validator rejects a misspelt field: strict schemas really are applied."""
    kv = kubernetes_validate()
    broken = yaml.safe_load(yaml.safe_dump(find("Deployment", "chatda-api")))
    container(broken)["readinessProbes"] = container(broken).pop("readinessProbe")
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, kv.latest_version(), strict=True)


# --- layout ----------------------------------------------------------------------------------


def test_expected_objects() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for _, d in DOCS)
    assert kinds == sorted(
        [
            ("ConfigMap", "chatda-config"),
            ("Secret", "chatda-secrets"),
            ("Deployment", "chatda-api"),
            ("Service", "chatda-api"),
            ("HorizontalPodAutoscaler", "chatda-api"),
            ("PodDisruptionBudget", "chatda-api"),
            ("Deployment", "chatda-ingest"),
            ("Deployment", "chatda-indexer"),
            ("Deployment", "chatda-feedback"),
        ]
    )


def test_namespace_agnostic() -> None:
    for path, doc in DOCS:
        assert "namespace" not in doc["metadata"], path.name
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "namespace" not in kustomization


def test_kustomization_lists_everything_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifest_files()} - {"secret.template.yaml"}
    images = {i["name"]: i for i in kustomization["images"]}
    assert set(images) == {"chatda"}
    assert_pinned(f"{images['chatda']['newName']}:{images['chatda']['newTag']}")


# --- configuration ---------------------------------------------------------------------------


def test_configmap_holds_only_known_non_secret_settings() -> None:
    data = find("ConfigMap", "chatda-config")["data"]
    assert set(data) - known_env_names() == set()
    assert not set(data) & SECRET_KEYS
    assert not [k for k in data if "TOKEN" in k or "PASSWORD" in k]
    assert {"CHATDA_KAFKA_BOOTSTRAP", "CHATDA_MILVUS_URI", "CHATDA_MODELS_DIR"} <= set(data)
    assert data["CHATDA_MODELS_DIR"] == "/models"  # where the image holds the model
    assert all(isinstance(v, str) for v in data.values())


def test_secret_template_is_marked_placeholder() -> None:
    secret = find("Secret", "chatda-secrets")
    values = secret["stringData"]
    assert set(values) == SECRET_KEYS
    for key, value in values.items():
        assert "REPLACE_ME" in value, key
    assert values["CHATDA_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "NOT applied" in (K8S / "secret.template.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["metadata"]["name"])
def test_every_deployment(deployment: dict[str, Any]) -> None:
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    c = container(deployment)
    # selector matches the pod's labels
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    # the pinned image, a real chatda command
    assert_pinned(c["image"])
    assert c["args"][0] in cli_commands()
    # configuration from the ConfigMap and the Secret
    refs = {
        (kind, ref[kind]["name"])
        for ref in c["envFrom"]
        for kind in ("configMapRef", "secretRef")
        if kind in ref
    }
    assert refs == {("configMapRef", "chatda-config"), ("secretRef", "chatda-secrets")}
    assert {e["name"] for e in c.get("env", [])} <= known_env_names()
    # resources
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][section]), section
    # non-root as the image's user, read-only root with writable /data and /tmp
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid()
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    data_dir = find("ConfigMap", "chatda-config")["data"]["CHATDA_DATA_DIR"]
    assert {"/tmp", data_dir} <= mounts


def image_uid() -> int:
    users = [
        line.split()[1]
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("USER ")
    ]
    return int(users[-1].split(":")[0])


# --- the search API --------------------------------------------------------------------------


def test_api_probes_liveness_on_healthz_readiness_on_readyz() -> None:
    api = find("Deployment", "chatda-api")
    c = container(api)
    paths = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/readyz"}
    for probe, path in paths.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert port_number(c, get["port"]) == 8000, probe
    startup = c["startupProbe"]
    # model load and catalog embedding before the first ready answer: minutes, not seconds
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180
    assert c["args"][0] == "serve"
    assert port_number(c, "http") == 8000


def test_api_prometheus_annotations() -> None:
    annotations = find("Deployment", "chatda-api")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_api_service_reaches_the_pods() -> None:
    service = find("Service", "chatda-api")
    api = find("Deployment", "chatda-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port_number(container(api), port["targetPort"]) == 8000


def test_api_hpa_scales_on_cpu() -> None:
    hpa = find("HorizontalPodAutoscaler", "chatda-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "chatda-api")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    api = find("Deployment", "chatda-api")
    # utilization is measured against the request; the HPA owns the replica count
    assert "cpu" in container(api)["resources"]["requests"]
    assert "replicas" not in api["spec"]


def test_api_pdb() -> None:
    pdb = find("PodDisruptionBudget", "chatda-api")
    labels = find("Deployment", "chatda-api")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = find("HorizontalPodAutoscaler", "chatda-api")
    # evictions stay possible at the minimum replica count
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


# --- ingest and indexer ----------------------------------------------------------------------


def test_ingest_replicas_equal_partitions() -> None:
    ingest = find("Deployment", "chatda-ingest")
    partitions = int(find("ConfigMap", "chatda-config")["data"]["CHATDA_ARTICLE_PARTITIONS"])
    assert partitions == 4
    assert ingest["spec"]["replicas"] == partitions
    # a rollout never adds a consumer beyond the partitions
    assert ingest["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    c = container(ingest)
    assert c["args"][0] == "ingest"
    assert "partition" in (K8S / "ingest.yaml").read_text(encoding="utf-8")
    assert not [
        d
        for _, d in DOCS
        if d["kind"] == "HorizontalPodAutoscaler"
        and d["spec"]["scaleTargetRef"]["name"] == "chatda-ingest"
    ]


def test_ingest_metrics_are_scraped() -> None:
    ingest = find("Deployment", "chatda-ingest")
    c = container(ingest)
    annotations = ingest["spec"]["template"]["metadata"]["annotations"]
    port = int(c["args"][c["args"].index("--metrics-port") + 1])
    assert annotations["prometheus.io/port"] == str(port)
    assert port_number(c, c["livenessProbe"]["httpGet"]["port"]) == port


def test_indexer_is_a_single_recreated_scheduler() -> None:
    indexer = find("Deployment", "chatda-indexer")
    assert indexer["spec"]["replicas"] == 1
    assert indexer["spec"]["strategy"] == {"type": "Recreate"}
    assert container(indexer)["args"] == ["scheduler"]
