"""The ``onnx-int8`` encoder backend: the registered model as ONNX, int8 dynamically quantised.

sentence-transformers' own route (``backend="onnx"``, ``export_dynamic_quantized_onnx_model``)
needs ``optimum-onnx``, whose only release pins transformers < 4.58 while this project pins 5.24;
so the transformer is exported with ``torch.onnx`` and quantised with onnxruntime's
``quantize_dynamic`` directly. Pooling (mean over the mask, prompt included) and normalisation
are the registered model's and run in numpy. Versions are immutable, so the ONNX files are
derived once, on first use, beside them in ``<models_dir>/<name>/.onnx/<version>/``.

Each layer's FFN down-projection (``layer.N/output/dense``) stays fp32. Its input is the GELU
output, whose few large activations (the outliers known from BERT quantisation studies) leave
a dynamic per-tensor uint8 scale too coarse for the rest: quantising it costs 0.5 KorSTS
points on base, keeping it costs 0.2, for a third of the layer's MatMul work left in fp32.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chatda.models.encoder import Encoder
from chatda.models.registry import ModelVersion
from chatda.settings import EncoderBackend

log = logging.getLogger(__name__)

FP32 = "model.onnx"
INT8 = "model_qint8_ffnout_fp32.onnx"
FFN_OUTPUT = re.compile(r"/layer\.\d+/output/dense/MatMul$")
OPSET = 17


class _LastHidden(torch.nn.Module):
    """Keyword-only call into the HF model, so tracing binds the two inputs by name."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def onnx_dir(version: ModelVersion) -> Path:
    return version.path.parent / ".onnx" / version.manifest.version


def int8_derivable(version: ModelVersion) -> bool:
    """Whether the int8 model is there or can be made where :func:`export` makes it."""
    target = onnx_dir(version)
    if (target / INT8).is_file():
        return True
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(target.parent, os.W_OK)


def ffn_output_nodes(model_file: Path, layers: int) -> list[str]:
    """The FFN down-projection MatMuls by their exported names; one per layer or it fails loudly,
    since a renamed graph would otherwise be quantised whole without a word."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and FFN_OUTPUT.search(n.name)]
    if len(nodes) != layers:
        raise RuntimeError(f"found {len(nodes)} FFN output MatMuls in {model_file}, not {layers}")
    return nodes


def export(version: ModelVersion) -> Path:
    """Write ``model.onnx`` (fp32) and the int8 model once; returns their folder. Two processes
    starting together may both export: the first to finish wins, the other's copy is dropped."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    target = onnx_dir(version)
    if (target / INT8).is_file():
        return target
    tmp = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise RuntimeError(
            f"{target / INT8} is missing and {target.parent} is not writable: run `chatda train "
            "export-onnx` where the registry is writable (the image: --build-arg ONNX_INT8=true)"
        ) from exc
    try:
        bert: Any = SentenceTransformer(str(version.path), device="cpu")[0].auto_model
        bert.eval()
        ids = torch.ones((2, 16), dtype=torch.long)
        with torch.no_grad():
            torch.onnx.export(
                _LastHidden(bert),
                (ids, torch.ones_like(ids)),
                str(tmp / FP32),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "last_hidden_state": {0: "batch", 1: "sequence"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        # Per-channel weight scales: cosine to fp32 ≈ 0.995 vs ≈ 0.988 per-tensor (measured);
        # with the FFN outputs left fp32, ≈ 0.999.
        quantize_dynamic(
            tmp / FP32,
            tmp / INT8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=ffn_output_nodes(tmp / FP32, bert.config.num_hidden_layers),
        )
        if not (target / INT8).is_file():
            shutil.rmtree(target, ignore_errors=True)  # an earlier recipe's files: derived
            try:
                os.rename(tmp, target)
            except OSError:
                if not (target / INT8).is_file():
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


class OnnxEncoder(Encoder):
    """The int8 model on onnxruntime's CPU provider; pooling and normalisation in numpy."""

    backend: EncoderBackend = "onnx-int8"

    def __init__(self, version: ModelVersion, cpu_threads: int = 0, model_file: str = INT8) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        path = export(version) / model_file
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # no busy-waiting between ops: the cores are shared with the event loop and, on a small
        # box, other processes; spinning threads steal the time the others need (BENCHMARKS § 1)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        super().__init__(version, "cpu", AutoTokenizer.from_pretrained(str(version.path)))
        log.info(
            "loaded %s from %s (threads=%s)", self.ref, path.name, options.intra_op_num_threads
        )

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        input_ids, mask = self.padded(ids)
        (hidden,) = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)
        return torch.from_numpy((pooled / norms).astype(np.float32))
