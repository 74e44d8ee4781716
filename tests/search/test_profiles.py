"""SLA profiles: built-in defaults, JSON/YAML overrides merged by name, and loud failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatda.search.profiles import (
    DEFAULT_PROFILES,
    Profile,
    ProfileError,
    SourceName,
    load_profiles,
)


def test_defaults_match_the_issue() -> None:
    profiles = load_profiles()
    assert set(profiles) == {"instant", "default", "deep"}
    instant, default, deep = profiles["instant"], profiles["default"], profiles["deep"]
    assert instant.budget_ms == 30
    assert set(instant.sources) == {SourceName.SUGGEST, SourceName.INTENTS}
    assert default.budget_ms == 150
    assert set(default.sources) == {SourceName.INTENTS, SourceName.DENSE, SourceName.BM25}
    assert deep.budget_ms == 800
    assert deep.depth_of(SourceName.DENSE) > default.depth_of(SourceName.DENSE)
    # weights are explicit and the dense leg counts more (docs/search.md, "Measurements")
    for profile in (default, deep):
        assert profile.weight_of(SourceName.DENSE) > profile.weight_of(SourceName.BM25) > 0


def test_yaml_override_is_merged_into_one_profile() -> None:
    profiles = load_profiles("default:\n  budget_ms: 200\n  fusion: {weights: {bm25: 0.9}}\n")
    default = profiles["default"]
    assert default.budget_ms == 200
    assert default.fusion.weights == {"dense": 0.6, "bm25": 0.9}
    assert default.fusion.method == "weighted" and default.depth_of(SourceName.BM25) == 40
    assert profiles["deep"] == load_profiles()["deep"]


def test_json_adds_a_profile(tmp_path: Path) -> None:
    extra = {"lexical": {"budget_ms": 50, "sources": ["bm25"], "fusion": {"weights": {"bm25": 1}}}}
    file = tmp_path / "profiles.json"
    file.write_text(json.dumps(extra), encoding="utf-8")
    profiles = load_profiles(file=file)
    assert profiles["lexical"].sources == [SourceName.BM25]
    assert profiles["lexical"].depth_of(SourceName.BM25) == 40  # the built-in default depth


def test_text_wins_over_file(tmp_path: Path) -> None:
    file = tmp_path / "profiles.yaml"
    file.write_text("instant: {budget_ms: 40}\n", encoding="utf-8")
    assert load_profiles("instant: {budget_ms: 25}", file)["instant"].budget_ms == 25


def test_lists_replace_rather_than_merge() -> None:
    profiles = load_profiles('{"default": {"sources": ["intents"]}}')
    assert profiles["default"].sources == [SourceName.INTENTS]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("default: [1, 2]", "mapping"),
        ("- a\n- b", "mapping"),
        ("default: {budget_ms: 0}", "budget_ms"),
        ("default: {budget_ms: 1000000}", "budget_ms"),
        ("default: {sources: []}", "sources"),
        ("default: {sources: [intents, intents]}", "repeat"),
        ("default: {sources: [vectors]}", "sources"),
        ("x: {budget_ms: 10, sources: [dense]}", "weights"),
        ("default: {fusion: {weights: {dense: 0, bm25: 0}}}", "positive weight"),
        ("default: {fusion: {weights: {dense: -1}}}", "weight"),
        ("default: {fusion: {weights: {sparse: 1}}}", "unknown leg"),
        ("default: {fusion: {method: borda}}", "method"),
        ("default: {fusion: {k: 0}}", "k"),
        ("default: {depth: {dense: 0}}", "depth"),
        ("default: {budget: 10}", "budget"),
        ("Bad Name: {budget_ms: 10, sources: [intents]}", "name"),
        ("default: {budget_ms: [", "YAML"),
    ],
)
def test_bad_configuration_fails_with_a_message(text: str, fragment: str) -> None:
    with pytest.raises(ProfileError, match=fragment):
        load_profiles(text)


def test_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profiles(file=tmp_path / "absent.yaml")


def test_built_in_profiles_validate_on_their_own() -> None:
    for body in DEFAULT_PROFILES.values():
        Profile.model_validate(body)
