"""The ONNX backends give the torch encoder's embeddings (fp32 exactly, int8 within a tolerance
the unquantised FFN outputs are needed for); fp32 serves the API by default on a CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from fastapi.testclient import TestClient

from chatda.models import onnx_encoder as onnx_module
from chatda.models.encoder import (
    Encoder,
    TorchEncoder,
    backend_for,
    encoder_loader,
    open_encoder,
)
from chatda.models.onnx_encoder import (
    FP32,
    INT8,
    OnnxEncoder,
    derive,
    ffn_output_nodes,
    onnx_dir,
)
from chatda.models.registry import ModelRegistry, ModelVersion
from chatda.settings import EncoderBackendSetting, Settings
from query.app import create_app
from tests.fixtures.model import link_model

QUERIES = [
    "적금 이자는 언제 들어오나요",
    "해외로 돈 보내는 방법",
    "카드 분실 신고",
    "대출 한도 조회",
]
PASSAGES = [
    "적금 이자는 만기일에 원금과 함께 지급됩니다.",
    "해외 송금은 앱의 송금 메뉴에서 수취인 정보를 입력해 보낼 수 있습니다.",
    "카드를 잃어버렸다면 즉시 분실 신고를 하고 재발급을 신청하세요.",
    "대출 한도는 소득과 신용 점수에 따라 달라집니다.",
]


def cpu_settings(device: str, backend: EncoderBackendSetting) -> Settings:
    return Settings(device=device, cpu_threads=1, encoder_backend=backend)


@pytest.fixture(scope="module")
def int8(base_model: ModelVersion) -> OnnxEncoder:
    encoder = open_encoder(base_model, cpu_settings("cpu", "onnx-int8"))
    assert isinstance(encoder, OnnxEncoder)
    return encoder


@pytest.fixture(scope="module")
def fp32(base_model: ModelVersion) -> OnnxEncoder:
    encoder = open_encoder(base_model, cpu_settings("cpu", "onnx"))
    assert isinstance(encoder, OnnxEncoder)
    return encoder


def test_derived_once_beside_the_version(base_model: ModelVersion, int8: OnnxEncoder) -> None:
    folder = onnx_dir(base_model)
    assert folder == base_model.path.parent / ".onnx" / "base"
    assert derive(base_model, "onnx-int8") == folder / INT8
    assert derive(base_model, "onnx") == folder / FP32
    stamps = [(folder / f).stat().st_mtime_ns for f in (FP32, INT8)]
    derive(base_model, "onnx-int8")
    assert [(folder / f).stat().st_mtime_ns for f in (FP32, INT8)] == stamps
    assert not list(folder.glob(".tmp-*"))


def test_int8_is_derived_from_the_fp32_model(base_model: ModelVersion, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    link_model(registry, base_model, "fresh")
    version = registry.get("e5-small-ko", "fresh")
    assert derive(version, "onnx-int8").is_file()
    assert sorted(p.name for p in onnx_dir(version).iterdir()) == sorted([FP32, INT8])


def test_the_export_runs_outside_this_process(
    base_model: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exporting is seconds of Python under the GIL: done in the API's process, a switch to a
    new model version stalled its event loop (a search timed out at 6.5 s). Here it cannot run
    in this process at all, and the file is still made (by the child, which imports the
    module afresh)."""

    def not_here(*_: object) -> None:
        raise AssertionError("exported in the calling process")

    monkeypatch.setattr(onnx_module, "_export_fp32", not_here)
    monkeypatch.setattr(onnx_module, "_quantise", not_here)
    registry = ModelRegistry(tmp_path)
    link_model(registry, base_model, "child")
    version = registry.get("e5-small-ko", "child")
    assert derive(version, "onnx-int8").is_file() and (onnx_dir(version) / FP32).is_file()


def test_ffn_outputs_stay_fp32(base_model: ModelVersion, int8: OnnxEncoder) -> None:
    graph = onnx.load(str(derive(base_model, "onnx-int8")), load_external_data=False).graph
    kept = ffn_output_nodes(derive(base_model, "onnx"), 12)
    by_name = {n.name: n.op_type for n in graph.node}
    assert all(by_name.get(name) == "MatMul" for name in kept)
    # per layer: query, key, value, attention output and FFN input are int8; nothing else
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 12 * 5


def test_unwritable_registry_says_how_to_export(base_model: ModelVersion, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    link_model(registry, base_model, "elsewhere")
    (tmp_path / "e5-small-ko" / ".onnx").write_text("")  # no folder can be made below it
    for backend in ("onnx", "onnx-int8"):
        with pytest.raises(RuntimeError, match="chatda model prepare"):
            derive(registry.get("e5-small-ko", "elsewhere"), backend)  # type: ignore[arg-type]


def test_embeddings_match_torch(int8: OnnxEncoder, fp32: OnnxEncoder, encoder: Encoder) -> None:
    for texts, kind in ((QUERIES, "query"), (PASSAGES, "passage")):
        expected = encoder.encode(texts, kind)
        assert np.abs(fp32.encode(texts, kind) - expected).max() < 1e-5
        got = int8.encode(texts, kind)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        # int8 FFN outputs measure 0.995-0.996 here; kept fp32 they lift it to 0.9986
        assert np.min(np.sum(got * expected, axis=1)) > 0.997
    scores = int8.encode(QUERIES, "query") @ int8.encode(PASSAGES, "passage").T
    assert list(scores.argmax(axis=1)) == [0, 1, 2, 3]


def test_shares_tokenisation_and_prompts(
    int8: OnnxEncoder, fp32: OnnxEncoder, encoder: Encoder
) -> None:
    for onnx_encoder, backend in ((int8, "onnx-int8"), (fp32, "onnx")):
        assert onnx_encoder.tokenize(QUERIES, "query") == encoder.tokenize(QUERIES, "query")
        assert onnx_encoder.tokenize(PASSAGES, "passage") == encoder.tokenize(PASSAGES, "passage")
        assert (onnx_encoder.backend, onnx_encoder.device, onnx_encoder.ref) == (
            backend,
            "cpu",
            encoder.ref,
        )


def test_loader_and_device_rules(models_dir: Path, base_model: ModelVersion) -> None:
    for backend in ("onnx", "onnx-int8"):
        load = encoder_loader(ModelRegistry(models_dir), cpu_settings("auto", backend))
        assert load("e5-small-ko@base").backend == backend
        with pytest.raises(ValueError, match="runs on the CPU"):
            open_encoder(base_model, cpu_settings("cuda", backend))
    assert isinstance(open_encoder(base_model, cpu_settings("cpu", "torch")), TorchEncoder)


@pytest.mark.parametrize("backend", ["onnx-int8", "auto"])
def test_api_serves_the_onnx_backends(
    models_dir: Path,
    tmp_path: Path,
    backend: EncoderBackendSetting,
    int8: OnnxEncoder,
    fp32: OnnxEncoder,
    encoder: Encoder,
) -> None:
    settings = Settings(
        data_dir=tmp_path, models_dir_override=models_dir, device="cpu", encoder_backend=backend
    )
    with TestClient(create_app(settings)) as client:
        health = client.get("/healthz").json()
        r = client.post("/v1/embeddings", json={"input": QUERIES, "input_type": "query"})
    expected = int8 if backend == "onnx-int8" else fp32
    assert (health["backend"], health["device"], health["model"]) == (
        expected.backend,
        "cpu",
        encoder.ref,
    )
    assert r.status_code == 200, r.text
    got = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    assert np.allclose(got, expected.encode(QUERIES, "query"), atol=1e-5)


def test_auto_is_the_default() -> None:
    assert Settings.model_fields["encoder_backend"].default == "auto"


def test_backend_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="encoder_backend"):
        Settings(encoder_backend="tensorrt")  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="device auto is the GPU here")
def test_auto_serves_fp32_onnx_on_the_cpu(base_model: ModelVersion, fp32: OnnxEncoder) -> None:
    for device in ("auto", "cpu"):
        assert backend_for(base_model, cpu_settings(device, "auto")) == "onnx"
        assert open_encoder(base_model, cpu_settings(device, "auto")).backend == "onnx"
    assert backend_for(base_model, cpu_settings("cpu", "torch")) == "torch"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_auto_serves_torch_on_a_gpu(base_model: ModelVersion) -> None:
    for device in ("auto", "cuda"):
        assert backend_for(base_model, cpu_settings(device, "auto")) == "torch"


def test_auto_serves_torch_from_a_registry_that_cannot_take_onnx(
    base_model: ModelVersion, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path)
    link_model(registry, base_model, "elsewhere")
    (tmp_path / "e5-small-ko" / ".onnx").write_text("")  # as read-only: nothing can be made
    version = registry.get("e5-small-ko", "elsewhere")
    assert backend_for(version, cpu_settings("cpu", "auto")) == "torch"
    assert isinstance(open_encoder(version, cpu_settings("cpu", "auto")), TorchEncoder)
    with pytest.raises(RuntimeError, match="chatda model prepare"):
        open_encoder(version, cpu_settings("cpu", "onnx-int8"))


def test_model_prepare_makes_the_onnx_model_the_default_serves(
    models_dir: Path, base_model: ModelVersion, int8: OnnxEncoder
) -> None:
    env = {
        **os.environ,
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_ENCODER_BACKEND": "auto",
        "CHATDA_DEVICE": "cpu",
    }
    command = [sys.executable, "-m", "cli.main", "model", "prepare", "--no-tuned"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"e5-small-ko@base onnx model at {onnx_dir(base_model) / FP32}" in done.stdout
    env["CHATDA_ENCODER_BACKEND"] = "onnx-int8"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert f"e5-small-ko@base onnx-int8 model at {onnx_dir(base_model) / INT8}" in done.stdout
    env["CHATDA_ENCODER_BACKEND"] = "torch"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "model at" not in done.stdout, done.stdout + done.stderr
