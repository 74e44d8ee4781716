"""A loaded model version, ready for batched inference.

Prompts (``query: `` / ``passage: ``) come from the model's manifest and are applied here and
nowhere else: callers say *what* a text is, never how the model wants it prefixed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch

from chatda.models.registry import ModelRegistry, ModelVersion, parse_ref

log = logging.getLogger(__name__)

Kind = Literal["query", "passage"]


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CHATDA_DEVICE=cuda but no CUDA device is available")
    return requested


class Encoder:
    def __init__(self, version: ModelVersion, device: str = "auto", cpu_threads: int = 0) -> None:
        from sentence_transformers import SentenceTransformer

        self.version = version
        self.manifest = version.manifest
        self.device = resolve_device(device)
        if self.device == "cpu":
            torch.set_num_threads(cpu_threads or os.cpu_count() or 1)
        self.model = SentenceTransformer(str(version.path), device=self.device)
        if self.device.startswith("cuda"):
            self.model.half()
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        self.max_length = self.manifest.max_seq_length
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.dim = self.manifest.dim
        log.info(
            "loaded %s on %s (threads=%s)", self.manifest.ref, self.device, torch.get_num_threads()
        )

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

    @torch.inference_mode()
    def embed_ids(self, ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """One forward pass; the result stays on the model's device for post-steps to use."""
        width = max(len(row) for row in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        features = {
            "input_ids": input_ids.to(self.device),
            "attention_mask": mask.to(self.device),
        }
        return self.model(features)["sentence_embedding"]

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


def encoder_loader(
    registry: ModelRegistry, default_name: str, device: str = "auto", cpu_threads: int = 0
) -> Callable[[str], Encoder]:
    """Loads a registered model by ref (``name@version``, ``name@`` for the serving one);
    ``ModelNotFound`` for one that is not registered. Services use it to follow the index."""

    def load(ref: str) -> Encoder:
        name, version = parse_ref(ref, default_name)
        return Encoder(registry.get(name, version), device, cpu_threads)

    return load
