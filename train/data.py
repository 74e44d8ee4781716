"""Loaders for the shared Korean datasets (``../shared/data``), one function per file format.

Every loader returns plain dataclasses so training, evaluation and tests share one shape and
never depend on a file format. The folder's README fixes what each split may be used for:
KorSTS train/KorNLI/KLUE NLI/question pairs to train, KorSTS dev to select, KorSTS test/KLUE
STS/KorQuAD dev to report. KorQuAD is evaluation-only, so no training module imports its loader.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class ScoredPair:
    """Two sentences and a similarity score (0–5 for KorSTS and KLUE STS)."""

    sentence1: str
    sentence2: str
    score: float


@dataclass(frozen=True)
class Triplet:
    """An NLI premise with one entailed and one contradicting hypothesis."""

    anchor: str
    positive: str
    negative: str


@dataclass(frozen=True)
class RetrievalSet:
    """Questions with the index of their gold passage in ``passages``."""

    passages: list[str]
    queries: list[str]
    gold: list[int]


@dataclass(frozen=True)
class Document:
    """An unlabeled document for silver-pair mining."""

    title: str
    body: str


def korsts(data_dir: Path, split: str) -> list[ScoredPair]:
    """KorSTS ``train`` | ``dev`` | ``test``; quoting is off because quotes occur inside text."""
    path = data_dir / "korsts" / f"sts-{split}.tsv"
    with path.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            ScoredPair(row["sentence1"].strip(), row["sentence2"].strip(), float(row["score"]))
            for row in reader
            if row.get("sentence1") and row.get("sentence2") and row.get("score")
        ]


def klue_sts_dev(data_dir: Path) -> list[ScoredPair]:
    """KLUE STS dev: native Korean (not translated), a second view of STS quality."""
    rows = json.loads((data_dir / "klue" / "klue-sts-v1.1_dev.json").read_text(encoding="utf-8"))
    return [
        ScoredPair(r["sentence1"].strip(), r["sentence2"].strip(), float(r["labels"]["label"]))
        for r in rows
    ]


def _triplets(pairs: list[tuple[str, str, str]]) -> list[Triplet]:
    """Group (premise, hypothesis, label) rows by premise; pair entailments with contradictions."""
    by_premise: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for premise, hypothesis, label in pairs:
        by_premise[premise][label].append(hypothesis)
    out: list[Triplet] = []
    for premise, labels in by_premise.items():
        contradictions = labels.get("contradiction", [])
        if not contradictions:
            continue
        for i, entailed in enumerate(labels.get("entailment", [])):
            out.append(Triplet(premise, entailed, contradictions[i % len(contradictions)]))
    return out


def kornli_triplets(data_dir: Path) -> list[Triplet]:
    """KorNLI XNLI dev + test (human-translated); the large train files are not available."""
    rows: list[tuple[str, str, str]] = []
    for split in ("dev", "test"):
        path = data_dir / "kornli" / f"xnli.{split}.ko.tsv"
        with path.open(encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            rows += [
                (r["sentence1"].strip(), r["sentence2"].strip(), r["gold_label"].strip())
                for r in reader
                if r.get("sentence1") and r.get("sentence2")
            ]
    return _triplets(rows)


def klue_nli_triplets(data_dir: Path) -> list[Triplet]:
    """KLUE NLI dev: human-written Korean premises/hypotheses."""
    rows = json.loads((data_dir / "klue" / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))
    return _triplets(
        [(r["premise"].strip(), r["hypothesis"].strip(), r["gold_label"]) for r in rows]
    )


def question_pair_paraphrases(data_dir: Path) -> list[tuple[str, str]]:
    """Hand-labelled same-meaning question pairs (the re-split ``train.txt``), deduplicated.

    The label is inverted against Quora's: ``is_duplicate`` 0 means the SAME question. A sixth of
    those pairs are two copies of one string, which teach nothing, so they are dropped.
    """
    path = data_dir / "question_pair" / "train.txt"
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            q1, q2 = (r.get("question1") or "").strip(), (r.get("question2") or "").strip()
            key = (min(q1, q2), max(q1, q2))
            if r.get("is_duplicate", "").strip() != "0" or not q1 or not q2 or q1 == q2:
                continue
            if key not in seen:
                seen.add(key)
                out.append((q1, q2))
    return out


def korquad_dev(data_dir: Path) -> RetrievalSet:
    """KorQuAD 1.0 dev as retrieval: every question against all 964 dev paragraphs.

    Evaluation only (CC BY-ND, and the README forbids training on it).
    """
    raw = json.loads((data_dir / "korquad1" / "KorQuAD_v1.0_dev.json").read_text(encoding="utf-8"))
    passages: list[str] = []
    index: dict[str, int] = {}
    queries: list[str] = []
    gold: list[int] = []
    for article in raw["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"].strip()
            if context not in index:
                index[context] = len(passages)
                passages.append(context)
            for qa in paragraph["qas"]:
                queries.append(qa["question"].strip())
                gold.append(index[context])
    return RetrievalSet(passages=passages, queries=queries, gold=gold)


def chatbot_pairs(data_dir: Path) -> list[tuple[str, str]]:
    """Everyday chat (question, answer) pairs: query-style text with a short reply as passage."""
    path = data_dir / "korean_chatbot_data" / "ChatbotData.csv"
    with path.open(encoding="utf-8") as fh:
        return [(r["Q"].strip(), r["A"].strip()) for r in csv.DictReader(fh) if r["Q"] and r["A"]]


def konlpy_documents(data_dir: Path) -> list[Document]:
    """National Assembly bills and the Constitution; the first line of each file is its title."""
    docs: list[Document] = []
    root = data_dir / "konlpy_corpus"
    for path in sorted([*root.glob("kobill/*.txt"), *root.glob("kolaw/*.txt")]):
        text = path.read_text(encoding="utf-8").lstrip("\ufeff").strip()
        title, _, body = text.partition("\n")
        docs.append(Document(title=title.strip(), body=body.strip()))
    return docs


def read_feedback(path: Path) -> list[tuple[str, str]]:
    """Click feedback as JSONL ``{"query": ..., "positive": ...}`` (one pair a line): what the
    indexer's retrain job exports from the SQL store's clicks."""
    pairs: list[tuple[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not row.get("query") or not row.get("positive"):
            raise ValueError(f"{path}:{n}: expected {{'query': ..., 'positive': ...}}")
        pairs.append((str(row["query"]).strip(), str(row["positive"]).strip()))
    return pairs
