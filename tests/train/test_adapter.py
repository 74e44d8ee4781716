"""A LoRA adapter trained for a few steps on a few pairs round-trips through ``model prepare``.

One adapter is trained per module (seconds) and every test copies what it alters. The registries
are private: the base is hard-linked in, so nothing touches the developer's .chatda.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from chatda.models.encoder import TorchEncoder
from chatda.models.lora import ADAPTER_WEIGHTS, LoraShape, fingerprint, merge_lora
from chatda.models.prepare import BASE_VERSION, prepare_models
from chatda.models.registry import ModelRegistry, ModelVersion
from chatda.models.tuned import (
    MANIFEST,
    TUNED_VERSION,
    TunedModelRefused,
    base_state,
    build_tuned,
)
from tests.fixtures.model import MODEL_NAME, link_model
from tests.train.conftest import PAIRS, PARAPHRASES, TRIPLETS, tiny_train_config
from train import adapter, nli_sts

TEXTS = [
    "송금하는 방법 알려줘",
    "카드를 잃어버렸어",
    "오늘 환율이 얼마야?",
    "비밀번호가 기억이 안 나",
]


@pytest.fixture(scope="module")
def trained(base_model: ModelVersion, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four steps at a rate high enough that the adapter's B matrices leave zero."""
    out = tmp_path_factory.mktemp("adapter") / "e5-small-ko-tuned"
    return _train_tiny(base_model, out, adapter.LoraSpec(rank=4))


def _train_tiny(base: ModelVersion, out: Path, spec: adapter.LoraSpec) -> Path:
    config = tiny_train_config(epochs=1, sts_epochs=1, learning_rate=5e-3)
    d = nli_sts.NliStsData(
        triplets=TRIPLETS[:4], sts_train=PAIRS[:4], sts_dev=PAIRS[4:], paraphrases=PARAPHRASES[:4]
    )
    adapter.train_adapter(base, d, config, spec, out, {"seed": 7})
    return out


def test_a_weight_ships_that_share_of_the_trained_update(
    trained: Path, base_model: ModelVersion, tmp_path: Path
) -> None:
    """``--weight 0.5``: the same training, its A/B matrices saved as trained, half its update
    in the merged model (base + 0.5 x what the full adapter adds), and the weight on record."""
    halved = _train_tiny(base_model, tmp_path / "halved", adapter.LoraSpec(rank=4, weight=0.5))
    assert (halved / ADAPTER_WEIGHTS).read_bytes() == (trained / ADAPTER_WEIGHTS).read_bytes()
    full_alpha = json.loads((trained / "adapter_config.json").read_text())["lora_alpha"]
    assert json.loads((halved / "adapter_config.json").read_text())["lora_alpha"] == full_alpha / 2
    assert json.loads((halved / MANIFEST).read_text())["adapter"]["lora"]["weight"] == 0.5
    merged = {}
    for name, folder in (("full", trained), ("half", halved)):
        registry, base = _registry(tmp_path / name, base_model)
        tuned, _ = build_tuned(registry, base, folder)
        merged[name] = load_file(tuned.path / "model.safetensors")
    start = load_file(base_model.path / "model.safetensors")
    moved = [k for k in start if not torch.equal(merged["full"][k], start[k])]
    assert moved
    for key in moved:
        torch.testing.assert_close(
            merged["half"][key] - start[key],
            0.5 * (merged["full"][key] - start[key]),
            atol=1e-6,
            rtol=0,
        )


def _registry(tmp_path: Path, base: ModelVersion) -> tuple[ModelRegistry, ModelVersion]:
    registry = ModelRegistry(tmp_path / "models")
    link_model(registry, base, BASE_VERSION)
    return registry, registry.get(MODEL_NAME, BASE_VERSION)


def _copy(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / trained.name))


def test_manifest_records_what_was_trained(trained: Path, base_model: ModelVersion) -> None:
    recorded = json.loads((trained / MANIFEST).read_text())
    assert recorded["name"] == MODEL_NAME and recorded["version"] == TUNED_VERSION
    assert recorded["base"]["ref"] == base_model.manifest.ref
    assert recorded["base"]["fingerprint"] == fingerprint(
        load_file(base_model.path / "model.safetensors")
    )
    assert recorded["adapter"]["lora"]["rank"] == 4
    assert recorded["training"]["data"]["nli_triplets"] == 4
    assert recorded["training"]["config"]["seed"] == 7
    assert [s["tasks"] for s in recorded["training"]["stages"]] == [["nli", "paraphrase"], ["sts"]]
    assert recorded["recipe"] == {"seed": 7}
    config = json.loads((trained / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == base_model.manifest.ref  # no local path
    weights = load_file(trained / ADAPTER_WEIGHTS)
    assert any(k.endswith("lora_B.weight") and v.abs().max() > 0 for k, v in weights.items())


def test_prepare_builds_the_same_tuned_weights_twice(
    trained: Path, base_model: ModelVersion, tmp_path: Path
) -> None:
    recorded = json.loads((trained / MANIFEST).read_text())
    built = []
    for run in ("one", "two"):
        registry, base = _registry(tmp_path / run, base_model)
        tuned, fresh = build_tuned(registry, base, trained)
        assert fresh and tuned.manifest.parent == base.manifest.ref
        built.append(fingerprint(load_file(tuned.path / "model.safetensors")))
        assert build_tuned(registry, base, trained)[1] is False  # idempotent
    assert built[0] == built[1] == recorded["merged_fingerprint"]
    assert built[0] != recorded["base"]["fingerprint"]


def test_merged_model_embeds_like_the_peft_model(
    trained: Path, base_model: ModelVersion, tmp_path: Path
) -> None:
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict
    from sentence_transformers import SentenceTransformer

    registry, base = _registry(tmp_path, base_model)
    tuned, _ = build_tuned(registry, base, trained)
    peft_model = SentenceTransformer(str(base.path), device="cpu")
    bert = peft_model[0].auto_model
    config = json.loads((trained / "adapter_config.json").read_text())
    inject_adapter_in_model(LoraConfig.from_peft_type(**config), bert)
    prefixed = load_file(trained / ADAPTER_WEIGHTS)
    result = set_peft_model_state_dict(
        bert, {k.removeprefix("base_model.model."): v for k, v in prefixed.items()}
    )
    assert not [k for k in result.unexpected_keys if "lora" in k]
    peft_model.eval()
    texts = [f"query: {t}" for t in TEXTS]
    with torch.no_grad():
        expected = peft_model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    got = TorchEncoder(tuned, device="cpu").encode(TEXTS, "query")
    base_rows = TorchEncoder(base, device="cpu").encode(TEXTS, "query")
    np.testing.assert_allclose(got, expected, atol=2e-5)
    assert np.abs(got - base_rows).max() > 1e-3  # the adapter changed something


def test_a_tampered_adapter_is_refused(
    trained: Path, base_model: ModelVersion, tmp_path: Path
) -> None:
    folder = _copy(trained, tmp_path)
    weights = load_file(folder / ADAPTER_WEIGHTS)
    key = sorted(k for k in weights if k.endswith("lora_B.weight"))[0]
    weights[key] = weights[key] + 0.01
    save_file(weights, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    registry, base = _registry(tmp_path, base_model)
    with pytest.raises(TunedModelRefused, match="not the adapter that was trained"):
        build_tuned(registry, base, folder)
    # Even with its checksum updated to match, the merge no longer gives the recorded weights.
    recorded = json.loads((folder / MANIFEST).read_text())
    recorded["adapter"]["sha256"] = adapter.sha256_of(folder / ADAPTER_WEIGHTS)
    (folder / MANIFEST).write_text(json.dumps(recorded))
    with pytest.raises(TunedModelRefused, match="not the recorded"):
        build_tuned(registry, base, folder)
    assert not registry.exists(MODEL_NAME, TUNED_VERSION)


def test_a_wrong_base_is_refused(trained: Path, base_model: ModelVersion, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    manifest = base_model.manifest.model_copy(update={"version": BASE_VERSION})
    with registry.staging(manifest) as folder:
        shutil.copytree(base_model.path, folder, dirs_exist_ok=True)
        weights = load_file(folder / "model.safetensors")
        name = "encoder.layer.0.attention.self.query.weight"
        weights[name] = weights[name] * 1.001
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(TunedModelRefused, match="cannot be applied"):
        build_tuned(registry, registry.get(MODEL_NAME, BASE_VERSION), trained)
    assert not registry.exists(MODEL_NAME, TUNED_VERSION)


@pytest.mark.parametrize(("preferred", "serving"), [(True, TUNED_VERSION), (False, BASE_VERSION)])
def test_prepare_serves_tuned_only_when_the_gate_preferred_it(
    trained: Path, base_model: ModelVersion, tmp_path: Path, preferred: bool, serving: str
) -> None:
    folder = _copy(trained, tmp_path)
    recorded = json.loads((folder / MANIFEST).read_text())
    recorded["gate"] = {"preferred": preferred}
    (folder / MANIFEST).write_text(json.dumps(recorded))
    registry, _ = _registry(tmp_path, base_model)
    prepared = prepare_models(registry, MODEL_NAME, 512, folder)
    assert prepared.tuned is not None and prepared.serving == serving
    assert registry.serving_version(MODEL_NAME) == serving


def test_prepare_keeps_an_operators_choice(
    trained: Path, base_model: ModelVersion, tmp_path: Path
) -> None:
    folder = _copy(trained, tmp_path)
    recorded = json.loads((folder / MANIFEST).read_text())
    recorded["gate"] = {"preferred": True}
    (folder / MANIFEST).write_text(json.dumps(recorded))
    registry, _ = _registry(tmp_path, base_model)
    registry.set_serving(MODEL_NAME, BASE_VERSION)
    assert prepare_models(registry, MODEL_NAME, 512, folder).serving == BASE_VERSION


def test_prepare_replaces_a_tuned_model_built_from_an_earlier_adapter(
    trained: Path, base_model: ModelVersion, tmp_path: Path
) -> None:
    registry, base = _registry(tmp_path, base_model)
    first, _ = build_tuned(registry, base, trained)
    folder = _copy(trained, tmp_path)  # a retrained adapter: other weights, its own manifest
    weights = load_file(folder / ADAPTER_WEIGHTS)
    weights = {k: v * 2 if k.endswith("lora_B.weight") else v for k, v in weights.items()}
    save_file(weights, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    recorded = json.loads((folder / MANIFEST).read_text())
    merged = merge_lora(base_state(base), weights, LoraShape.read(folder))
    recorded["adapter"]["sha256"] = adapter.sha256_of(folder / ADAPTER_WEIGHTS)
    recorded["merged_fingerprint"] = fingerprint(merged)
    (folder / MANIFEST).write_text(json.dumps(recorded))
    second, built = build_tuned(registry, base, folder)
    assert built and second.manifest.source["merged_fingerprint"] == fingerprint(merged)
    assert (
        second.manifest.source["merged_fingerprint"] != first.manifest.source["merged_fingerprint"]
    )
