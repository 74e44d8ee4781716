"""Per-task, per-device defaults reach the job unless a flag really sets a value."""

from __future__ import annotations

from train.runner import DEFAULTS, default_config


def test_unset_flags_leave_the_task_defaults_in_place() -> None:
    # The CLI passes None for every flag the user left out; None must not mask a default.
    config = default_config("retrieval", "cpu", batch_size=None, learning_rate=None, seed=3)
    expected = DEFAULTS[("retrieval", "cpu")]
    assert config.batch_size == expected["batch_size"] == 64
    assert config.mini_batch_size == expected["mini_batch_size"]
    assert config.learning_rate == expected["learning_rate"]
    assert config.ranking_scale == expected["ranking_scale"] == 100.0
    assert config.seed == 3


def test_nli_sts_keeps_e5s_temperature_and_a_later_sts_stage_on_a_cpu() -> None:
    config = default_config("nli-sts", "cpu", ranking_scale=None, eval_steps=None)
    assert (config.ranking_scale, config.eval_steps, config.batch_size) == (100.0, 90, 32)
    assert config.sts_epochs == 1.0


def test_a_flag_overrides_the_task_default() -> None:
    config = default_config("nli-sts", "cpu", batch_size=8, max_seq_length=None)
    assert config.batch_size == 8
    assert config.max_seq_length == DEFAULTS[("nli-sts", "cpu")]["max_seq_length"]
