"""The shared-data loaders read each file's own conventions right."""

from __future__ import annotations

from pathlib import Path

from train import data

from .conftest import write_nli_sts_data


def test_question_pairs_keep_same_meaning_pairs_once_and_drop_copies(tmp_path: Path) -> None:
    # is_duplicate 0 means the SAME question in this dataset (inverted against Quora's label).
    pairs = data.question_pair_paraphrases(write_nli_sts_data(tmp_path))
    assert pairs == [("송금 어떻게 해?", "돈 보내는 법"), ("환율 알려줘", "오늘 환율은?")]
