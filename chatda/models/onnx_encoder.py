"""The ONNX encoder backends: the registered model on onnxruntime's CPU provider, as exported
(``onnx``, fp32: the CPU default) or int8 dynamically quantised (``onnx-int8``).

Why fp32 ONNX is the CPU default (BENCHMARKS § 8): torch runs a forward pass as a few hundred
Python-dispatched ops, and each takes the GIL back between kernels. Beside a busy event loop
(the API under load) every hand-back waits for the loop's switch interval, and a pass of 64
short queries took 1.07 s instead of 0.14 s; onnxruntime releases the GIL once for the whole
pass (0.11 s beside the same loop, 0.07 s alone). Same weights, same floats (cosine to torch
> 0.9999999), so every evaluation reads the same.

sentence-transformers' own route (``backend="onnx"``, ``export_dynamic_quantized_onnx_model``)
needs ``optimum-onnx``, whose only release pins transformers < 4.58 while this project pins 5.24;
so the transformer is exported with ``torch.onnx`` and quantised with onnxruntime's
``quantize_dynamic`` directly. Pooling (mean over the mask, prompt included) and normalisation
are the registered model's and run in numpy. Versions are immutable, so the ONNX files are
derived once, on first use, in a child process (for the serving version: by ``chatda model
prepare``), beside them
in ``<models_dir>/<name>/.onnx/<version>/``; int8 is derived from the fp32 file.

Each layer's FFN down-projection (``layer.N/output/dense``) stays fp32 in the int8 model. Its
input is the GELU output, whose few large activations (the outliers known from BERT
quantisation studies) leave a dynamic per-tensor uint8 scale too coarse for the rest:
quantising it costs 0.5 KorSTS points on base, keeping it costs 0.2, for a third of the layer's
MatMul work left in fp32.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
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


FILES: dict[str, str] = {"onnx": FP32, "onnx-int8": INT8}
"""The file each ONNX backend serves."""


def derivable(version: ModelVersion, backend: EncoderBackend) -> bool:
    """Whether ``backend``'s file is there or can be made where :func:`derive` makes it."""
    target = onnx_dir(version)
    return (target / FILES[backend]).is_file() or _writable(target)


def _writable(target: Path) -> bool:
    """Whether files can be written into ``target`` (made if missing): the one test
    :func:`derivable` and :func:`derive` share, so ``auto`` never picks a backend whose file
    then cannot be made."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(target, os.W_OK)


def ffn_output_nodes(model_file: Path, layers: int) -> list[str]:
    """The FFN down-projection MatMuls by their exported names; one per layer or it fails loudly,
    since a renamed graph would otherwise be quantised whole without a word."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and FFN_OUTPUT.search(n.name)]
    if len(nodes) != layers:
        raise RuntimeError(f"found {len(nodes)} FFN output MatMuls in {model_file}, not {layers}")
    return nodes


def derive(version: ModelVersion, backend: EncoderBackend) -> Path:
    """``backend``'s model file, made once if missing (the fp32 export first, int8 from it).

    It is made in a child process: the export is seconds of Python (torch's tracer, then
    onnxruntime's quantiser) that hold the GIL, and an API process loading a new version (a
    re-index to another model, a retrained one) stalled its event loop for as long: a search
    under load timed out at 6.5 s in the re-index test. The child takes the CPU, not the loop.
    """
    path = onnx_dir(version) / FILES[backend]
    if path.is_file():
        return path
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        made: Path = pool.apply(_derive_here, (version, backend))
    return made


def _derive_here(version: ModelVersion, backend: EncoderBackend) -> Path:
    """:func:`derive`'s work, in this process.

    Each file is written under a temporary name and renamed into place, so a reader never
    sees half a model; two processes starting together may both derive it, the last rename
    wins with the same bytes.
    """
    target = onnx_dir(version)
    path = target / FILES[backend]
    if path.is_file():
        return path
    if not _writable(target):
        raise RuntimeError(
            f"{path} is missing and {target} cannot be written: run `chatda model prepare` "
            "or `chatda train export-onnx` where the registry is writable"
        )
    tmp = target / f".tmp-{uuid.uuid4().hex[:8]}-{path.name}"
    try:
        if backend == "onnx":
            _export_fp32(version, tmp)
        else:
            _quantise(_derive_here(version, "onnx"), tmp, version)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _export_fp32(version: ModelVersion, out: Path) -> None:
    from sentence_transformers import SentenceTransformer

    bert: Any = SentenceTransformer(str(version.path), device="cpu")[0].auto_model
    bert.eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            _LastHidden(bert),
            (ids, torch.ones_like(ids)),
            str(out),
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


def _quantise(fp32: Path, out: Path, version: ModelVersion) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales: cosine to fp32 ≈ 0.995 vs ≈ 0.988 per-tensor (measured);
    # with the FFN outputs left fp32, ≈ 0.999.
    quantize_dynamic(
        fp32,
        out,
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=ffn_output_nodes(fp32, _layers(version)),
    )


def _layers(version: ModelVersion) -> int:
    return int(json.loads((version.path / "config.json").read_text())["num_hidden_layers"])


class OnnxEncoder(Encoder):
    """The model on onnxruntime's CPU provider; pooling and normalisation in numpy."""

    def __init__(
        self, version: ModelVersion, backend: EncoderBackend = "onnx", cpu_threads: int = 0
    ) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.backend = backend
        path = derive(version, backend)
        options = ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # no busy-waiting between ops: the cores are shared with the event loop and, on a small
        # box, other processes; spinning threads steal the time the others need (BENCHMARKS § 1)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # the arena keeps the largest pass's buffers for good: one batch of 16 x 512 tokens left
        # the process at 2.1 GB instead of 1.1 (torch's); handing them back after each pass
        # costs ~10 % on such a pass and nothing measurable on short queries
        self._run_options = ort.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        super().__init__(version, "cpu", AutoTokenizer.from_pretrained(str(version.path)))
        log.info(
            "loaded %s from %s (threads=%s)", self.ref, path.name, options.intra_op_num_threads
        )

    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        input_ids, mask = self.padded(ids)
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        (hidden,) = self.session.run(None, feeds, self._run_options)
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)
        return torch.from_numpy((pooled / norms).astype(np.float32))
