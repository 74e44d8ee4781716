"""A loaded model version, ready for batched inference, on one of two backends.

Prompts (``query: `` / ``passage: ``) come from the model's manifest and are applied here and
nowhere else: callers say *what* a text is, never how the model wants it prefixed. The backends
share tokenisation and batching (``Encoder``) and differ only in the forward pass: torch
(``TorchEncoder``, CPU or GPU) or onnxruntime, fp32 or int8 (``chatda.models.onnx_encoder``, CPU).
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from chatda.models.registry import ModelRegistry, ModelVersion, parse_ref
from chatda.settings import EncoderBackend, Settings

log = logging.getLogger(__name__)

Kind = Literal["query", "passage"]


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CHATDA_DEVICE=cuda but no CUDA device is available")
    return requested


class Encoder(ABC):
    """Tokenisation, prompts and length-sorted batching; a backend supplies ``embed_ids``."""

    backend: EncoderBackend

    def __init__(self, version: ModelVersion, device: str, tokenizer: Any) -> None:
        self.version = version
        self.manifest = version.manifest
        self.device = device
        self.tokenizer = tokenizer
        self.max_length = self.manifest.max_seq_length
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.dim = self.manifest.dim

    @property
    def ref(self) -> str:
        return self.manifest.ref

    def prompt(self, kind: Kind) -> str:
        if kind == "query":
            return self.manifest.prompts.query
        if kind == "passage":
            return self.manifest.prompts.passage
        raise ValueError(f"unknown text kind {kind!r}; expected 'query' or 'passage'")

    def tokenize(self, texts: Sequence[str], kind: Kind) -> list[list[int]]:
        prompt = self.prompt(kind)
        batch = self.tokenizer(
            [prompt + t for t in texts],
            truncation=True,
            max_length=self.max_length,
            add_special_tokens=True,
        )
        return [list(ids) for ids in batch["input_ids"]]

    def count_tokens(self, text: str, kind: Kind = "passage") -> int:
        return len(self.tokenize([text], kind)[0])

    def padded(self, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Right-padded ``input_ids`` and ``attention_mask`` (int64) for one batch."""
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return input_ids, mask

    @abstractmethod
    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """One forward pass to L2-normalised rows, left on ``device`` for post-steps to use."""

    def encode(self, texts: Sequence[str], kind: Kind, batch_size: int = 64) -> np.ndarray:
        """Synchronous encoding for jobs and tests: length-sorted batches, float32 rows in order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.tokenize(texts, kind)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            emb = self.embed_ids([ids[i] for i in rows])
            out[rows] = emb.float().cpu().numpy()
        return out


class TorchEncoder(Encoder):
    """The registered sentence-transformers model on torch; fp16 on a GPU."""

    backend: EncoderBackend = "torch"

    def __init__(self, version: ModelVersion, device: str = "auto", cpu_threads: int = 0) -> None:
        from sentence_transformers import SentenceTransformer

        resolved = resolve_device(device)
        if resolved == "cpu":
            torch.set_num_threads(cpu_threads or os.cpu_count() or 1)
        self.model = SentenceTransformer(str(version.path), device=resolved)
        if resolved.startswith("cuda"):
            self.model.half()
        self.model.eval()
        super().__init__(version, resolved, self.model.tokenizer)
        log.info("loaded %s on %s (threads=%s)", self.ref, self.device, torch.get_num_threads())

    @torch.inference_mode()
    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        input_ids, mask = self.padded(ids)
        features = {
            "input_ids": torch.from_numpy(input_ids).to(self.device),
            "attention_mask": torch.from_numpy(mask).to(self.device),
        }
        return self.model(features)["sentence_embedding"]


def backend_for(version: ModelVersion, settings: Settings) -> EncoderBackend:
    """``auto``: fp32 ``onnx`` on the CPU and ``torch`` on a GPU. On a CPU torch loses most of
    its passes to the GIL once the event loop is busy (7x slower beside one busy Python thread,
    BENCHMARKS § 8) while onnxruntime computes the same floats in one GIL-free call. A CPU
    registry that holds no ONNX model and cannot take one (a read-only image built without it)
    serves torch, with a warning, rather than not starting."""
    if settings.encoder_backend != "auto":
        return settings.encoder_backend
    if resolve_device(settings.device) != "cpu":
        return "torch"
    from chatda.models.onnx_encoder import derivable

    if derivable(version, "onnx"):
        return "onnx"
    log.warning("no ONNX model for %s and its registry is read-only: torch", version.manifest.ref)
    return "torch"


def open_encoder(version: ModelVersion, settings: Settings) -> Encoder:
    """The encoder the settings ask for (device, threads, backend): the one place services turn
    settings into an encoder. The ONNX backends run on the CPU: they refuse ``device=cuda``
    rather than silently serving a GPU machine from its CPU."""
    device, backend = settings.device, backend_for(version, settings)
    if backend == "torch":
        return TorchEncoder(version, device, settings.cpu_threads)
    if device not in ("auto", "cpu"):
        raise ValueError(f"encoder backend {backend!r} runs on the CPU; got device {device!r}")
    from chatda.models.onnx_encoder import OnnxEncoder

    return OnnxEncoder(version, backend, settings.cpu_threads)


def encoder_loader(registry: ModelRegistry, settings: Settings) -> Callable[[str], Encoder]:
    """Loads a registered model by ref (``name@version``, ``name@`` for the serving one, bare
    versions of ``settings.model_name``); ``ModelNotFound`` for one that is not registered.
    Services use it to follow the index."""

    def load(ref: str) -> Encoder:
        name, version = parse_ref(ref, settings.model_name)
        return open_encoder(registry.get(name, version), settings)

    return load
