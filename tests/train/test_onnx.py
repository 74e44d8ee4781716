"""The ONNX backend gives the torch encoder's embeddings: fp32 exactly, int8 within tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from chatda.models.encoder import Encoder
from chatda.models.registry import ModelRegistry, ModelVersion

ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime onnx)"
)

from train.onnx_backend import FP32, INT8, OnnxEncoder, export  # noqa: E402
from train.prompts import Kind  # noqa: E402

from .conftest import PASSAGES, QUERIES  # noqa: E402


def test_onnx_embeddings_match_torch(
    base_model: ModelVersion, tmp_registry: ModelRegistry, encoder: Encoder
) -> None:
    folder = export(tmp_registry, base_model)
    assert (folder / FP32).is_file() and (folder / INT8).is_file()
    assert export(tmp_registry, base_model) == folder  # exported once, then reused

    fp32 = OnnxEncoder(base_model, folder / FP32, threads=1)
    int8 = OnnxEncoder(base_model, folder / INT8, threads=1)
    cases: list[tuple[list[str], Kind]] = [(QUERIES, "query"), (PASSAGES, "passage")]
    for texts, kind in cases:
        expected = encoder.encode(texts, kind)
        assert np.abs(fp32.encode(texts, kind) - expected).max() < 1e-4
        assert np.min(np.sum(int8.encode(texts, kind) * expected, axis=1)) > 0.995
    # Quantisation must not change which passage each query finds.
    scores = int8.encode(QUERIES, "query") @ int8.encode(PASSAGES, "passage").T
    assert list(scores.argmax(axis=1)) == [0, 1, 2, 3]
