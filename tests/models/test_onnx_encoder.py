"""The onnx-int8 backend gives the torch encoder's embeddings (fp32 exactly, int8 within a
tolerance the unquantised FFN outputs are needed for) and serves the API when settings ask."""

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
    export,
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


def test_export_once_beside_the_version(base_model: ModelVersion, int8: OnnxEncoder) -> None:
    folder = export(base_model)
    assert folder == onnx_dir(base_model) == base_model.path.parent / ".onnx" / "base"
    assert (folder / FP32).is_file() and (folder / INT8).is_file()
    stamp = (folder / INT8).stat().st_mtime_ns
    assert export(base_model) == folder and (folder / INT8).stat().st_mtime_ns == stamp


def test_ffn_outputs_stay_fp32(base_model: ModelVersion, int8: OnnxEncoder) -> None:
    graph = onnx.load(str(export(base_model) / INT8), load_external_data=False).graph
    kept = ffn_output_nodes(export(base_model) / FP32, 12)
    by_name = {n.name: n.op_type for n in graph.node}
    assert all(by_name.get(name) == "MatMul" for name in kept)
    # per layer: query, key, value, attention output and FFN input are int8; nothing else
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 12 * 5


def test_unwritable_registry_says_how_to_export(base_model: ModelVersion, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    link_model(registry, base_model, "elsewhere")
    (tmp_path / "e5-small-ko" / ".onnx").write_text("")  # no folder can be made below it
    with pytest.raises(RuntimeError, match="chatda train export-onnx"):
        export(registry.get("e5-small-ko", "elsewhere"))


def test_embeddings_match_torch(
    base_model: ModelVersion, int8: OnnxEncoder, encoder: Encoder
) -> None:
    fp32 = OnnxEncoder(base_model, cpu_threads=1, model_file=FP32)
    for texts, kind in ((QUERIES, "query"), (PASSAGES, "passage")):
        expected = encoder.encode(texts, kind)
        assert np.abs(fp32.encode(texts, kind) - expected).max() < 1e-4
        got = int8.encode(texts, kind)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        # int8 FFN outputs measure 0.995-0.996 here; kept fp32 they lift it to 0.9986
        assert np.min(np.sum(got * expected, axis=1)) > 0.997
    scores = int8.encode(QUERIES, "query") @ int8.encode(PASSAGES, "passage").T
    assert list(scores.argmax(axis=1)) == [0, 1, 2, 3]


def test_shares_tokenisation_and_prompts(int8: OnnxEncoder, encoder: Encoder) -> None:
    assert int8.tokenize(QUERIES, "query") == encoder.tokenize(QUERIES, "query")
    assert int8.tokenize(PASSAGES, "passage") == encoder.tokenize(PASSAGES, "passage")
    assert (int8.backend, int8.device, int8.ref) == ("onnx-int8", "cpu", encoder.ref)


def test_loader_and_device_rules(models_dir: Path, base_model: ModelVersion) -> None:
    load = encoder_loader(ModelRegistry(models_dir), cpu_settings("auto", "onnx-int8"))
    assert isinstance(load("e5-small-ko@base"), OnnxEncoder)
    with pytest.raises(ValueError, match="runs on the CPU"):
        open_encoder(base_model, cpu_settings("cuda", "onnx-int8"))
    assert isinstance(open_encoder(base_model, cpu_settings("cpu", "torch")), TorchEncoder)


def test_api_serves_the_int8_backend(
    models_dir: Path, tmp_path: Path, int8: OnnxEncoder, encoder: Encoder
) -> None:
    settings = Settings(
        data_dir=tmp_path, models_dir_override=models_dir, device="cpu", encoder_backend="onnx-int8"
    )
    with TestClient(create_app(settings)) as client:
        health = client.get("/healthz").json()
        r = client.post("/v1/embeddings", json={"input": QUERIES, "input_type": "query"})
    assert (health["backend"], health["device"], health["model"]) == (
        "onnx-int8",
        "cpu",
        encoder.ref,
    )
    assert r.status_code == 200, r.text
    got = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    assert np.allclose(got, int8.encode(QUERIES, "query"), atol=1e-5)


def test_backend_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="encoder_backend"):
        Settings(encoder_backend="tensorrt")  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="device auto is the GPU here")
def test_auto_serves_int8_on_the_cpu(base_model: ModelVersion, int8: OnnxEncoder) -> None:
    for device in ("auto", "cpu"):
        assert backend_for(base_model, cpu_settings(device, "auto")) == "onnx-int8"
        assert isinstance(open_encoder(base_model, cpu_settings(device, "auto")), OnnxEncoder)
    assert backend_for(base_model, cpu_settings("cpu", "torch")) == "torch"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_auto_serves_torch_on_a_gpu(base_model: ModelVersion) -> None:
    for device in ("auto", "cuda"):
        assert backend_for(base_model, cpu_settings(device, "auto")) == "torch"


def test_auto_serves_torch_from_a_registry_that_cannot_take_int8(
    base_model: ModelVersion, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path)
    link_model(registry, base_model, "elsewhere")
    (tmp_path / "e5-small-ko" / ".onnx").write_text("")  # as read-only: nothing can be made
    version = registry.get("e5-small-ko", "elsewhere")
    assert backend_for(version, cpu_settings("cpu", "auto")) == "torch"
    assert isinstance(open_encoder(version, cpu_settings("cpu", "auto")), TorchEncoder)
    with pytest.raises(RuntimeError, match="chatda train export-onnx"):
        open_encoder(version, cpu_settings("cpu", "onnx-int8"))


def test_model_prepare_makes_the_int8_model_the_default_serves(
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
    assert f"e5-small-ko@base int8 ONNX at {onnx_dir(base_model)}" in done.stdout
    env["CHATDA_ENCODER_BACKEND"] = "torch"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "int8" not in done.stdout, done.stdout + done.stderr
