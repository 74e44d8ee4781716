"""Tiny in-memory data and a throw-away registry, so training tests take seconds.

The parent model is the session's base (``base_model`` fixture); every new version is written into
``tmp_registry`` and never into the session registry the services load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatda.models.registry import ModelRegistry
from train.data import RetrievalSet, ScoredPair, Triplet
from train.evaluate import EvalSuite
from train.runner import TrainConfig

TRIPLETS = [
    Triplet("남자가 기타를 치고 있다.", "한 남자가 악기를 연주한다.", "남자가 잠을 자고 있다."),
    Triplet(
        "아이들이 공원에서 뛰어논다.", "아이들이 밖에서 놀고 있다.", "아이들이 교실에 앉아 있다."
    ),
    Triplet("여자가 요리를 하고 있다.", "여자가 음식을 만든다.", "여자가 수영을 하고 있다."),
    Triplet("비행기가 이륙하고 있다.", "비행기가 하늘로 떠오른다.", "비행기가 격납고에 서 있다."),
    Triplet("고양이가 소파 위에서 잔다.", "고양이가 쉬고 있다.", "고양이가 쥐를 쫓고 있다."),
    Triplet("남자가 자전거를 탄다.", "남자가 자전거로 이동한다.", "남자가 걸어서 간다."),
    Triplet("학생들이 시험을 본다.", "학생들이 문제를 푼다.", "학생들이 소풍을 간다."),
    Triplet("개가 공을 물어 온다.", "개가 공놀이를 한다.", "개가 집에서 자고 있다."),
]

PAIRS = [
    ScoredPair("남자가 기타를 친다.", "남자가 기타를 연주한다.", 4.8),
    ScoredPair("여자가 양파를 썬다.", "여자가 양파를 자르고 있다.", 4.6),
    ScoredPair("아이가 웃고 있다.", "남자가 차를 운전한다.", 0.2),
    ScoredPair("개가 달린다.", "고양이가 잔다.", 0.4),
    ScoredPair("비가 온다.", "날씨가 흐리고 비가 내린다.", 3.6),
    ScoredPair("사람들이 춤을 춘다.", "사람들이 노래를 부른다.", 1.8),
    ScoredPair("기차가 역에 도착했다.", "기차가 정거장에 들어왔다.", 4.4),
    ScoredPair("남자가 수영한다.", "여자가 책을 읽는다.", 0.0),
]

PARAPHRASES = [
    ("돈 보내는 법 알려줘", "송금은 어떻게 해?"),
    ("비밀번호를 잊어버렸어", "비밀번호가 기억이 안 나"),
    ("환율 좀 알려줘", "오늘 환율이 얼마야?"),
    ("카드를 잃어버렸어", "카드 분실했어"),
    ("배고파", "뭐 좀 먹고 싶다"),
    ("주말에 뭐 하지", "이번 주말 계획이 없어"),
    ("잠이 안 와", "불면증인가 봐"),
    ("비가 올까?", "오늘 우산 챙겨야 해?"),
]

PASSAGES = [
    "서울은 대한민국의 수도이며 가장 큰 도시이다.",
    "김치는 배추와 고춧가루로 만드는 한국의 전통 발효 음식이다.",
    "한글은 세종대왕이 1443년에 창제한 문자이다.",
    "제주도는 한국에서 가장 큰 섬으로 한라산이 있다.",
]
QUERIES = [
    "한국의 수도는 어디인가?",
    "김치는 무엇으로 만드나?",
    "한글을 만든 사람은?",
    "한라산은 어디에 있나?",
]


@pytest.fixture
def tmp_registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


def tiny_train_config(**overrides: Any) -> TrainConfig:
    """A few steps at a high learning rate: enough for the loss to move, seconds on a CPU."""
    fields: dict[str, Any] = {
        "device": "cpu",
        "seed": 7,
        "epochs": 4,
        "batch_size": 4,
        "learning_rate": 1e-4,
        "warmup_ratio": 0.0,
        "max_seq_length": 32,
        "eval_steps": 0,
        "logging_steps": 1,
    }
    return TrainConfig(**{**fields, **overrides})


@pytest.fixture
def tiny_config() -> TrainConfig:
    return tiny_train_config()


@pytest.fixture
def tiny_suite() -> EvalSuite:
    return EvalSuite(
        korsts_test=PAIRS,
        klue_sts_dev=PAIRS[:6],
        korquad=RetrievalSet(passages=PASSAGES, queries=QUERIES, gold=[0, 1, 2, 3]),
    )


def write_nli_sts_data(tmp_path: Path) -> Path:
    """A few lines in the shape of every shared file ``nli_sts.load_data`` reads: 3 NLI triplets
    (KorNLI dev, KorNLI test, KLUE), 2 paraphrases among 5 question pairs, 2 distinct chat
    questions, 3 + 2 KorSTS pairs."""
    root = tmp_path / "nli-sts-data"
    kornli = root / "kornli"
    kornli.mkdir(parents=True)
    for split, premise in (("dev", "통장을 새로 만들었다."), ("test", "카드를 발급받았다.")):
        (kornli / f"xnli.{split}.ko.tsv").write_text(
            "sentence1\tsentence2\tgold_label\n"
            f"{premise}\t새 상품에 가입했다.\tentailment\n"
            f"{premise}\t아무것도 하지 않았다.\tcontradiction\n",
            encoding="utf-8",
        )
    klue = root / "klue" / "klue-nli-v1.1_dev.json"
    klue.parent.mkdir()
    rows = [
        ("카드 결제가 승인되었다.", "결제가 되었다.", "entailment"),
        ("카드 결제가 승인되었다.", "결제가 거절되었다.", "contradiction"),
    ]
    klue.write_text(
        json.dumps([{"premise": p, "hypothesis": h, "gold_label": g} for p, h, g in rows]),
        encoding="utf-8",
    )
    pairs = root / "question_pair"
    pairs.mkdir()
    (pairs / "train.txt").write_text(
        "question1\tquestion2\tis_duplicate\n"
        "송금 어떻게 해?\t돈 보내는 법\t0\n"
        "돈 보내는 법\t송금 어떻게 해?\t0\n"  # the same pair reversed: kept once
        "잠이 안 와\t잠이 안 와\t0\n"  # one string twice: teaches nothing
        "배고파\t비가 온다\t1\n"  # 1 means different questions
        "환율 알려줘\t오늘 환율은?\t0\n",
        encoding="utf-8",
    )
    chat = root / "korean_chatbot_data"
    chat.mkdir()
    (chat / "ChatbotData.csv").write_text(
        "Q,A,label\n"
        "배고파,뭐 좀 드세요.,0\n"
        "잠이 안 와,따뜻한 우유를 드세요.,0\n"
        "배고파,밥 먹어요.,0\n",  # a question asked twice: one anchor
        encoding="utf-8",
    )
    korsts = root / "korsts"
    korsts.mkdir()
    head = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
    for split, n in (("train", 3), ("dev", 2)):
        lines = [
            f"g\tf\t2012\t{i:04d}\t{i}.0\t{split} 남자가 걷는다 {i}.\t남자가 달린다.\n"
            for i in range(n)
        ]
        (korsts / f"sts-{split}.tsv").write_text(head + "".join(lines), encoding="utf-8")
    return root
