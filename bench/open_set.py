"""Development open-set splits for the intent decision (issue #27), from training-allowed data.

`python -m bench.open_set OUT_DIR` writes ``{a,b,c,d}_corpus.jsonl`` and
``{a,b,c,d}_queries.jsonl`` for `chatda eval --mode intents`. Split A selects the calibration's
hyper-parameters, split B is reported; they share no query. Splits C and D hold out the other six
families (and take A's and B's parity of demo queries): fresh checks for a choice once B has
been looked at.

Each split is the demo catalog (``chatda/demo/catalog.yaml``, hand-written for chatda) with:
- three of its twelve top-level families held out whole (the parent and its children): the
  services the app lacks. Their demo evaluation queries and their hints become out-of-scope
  queries (``relevant: []``);
- from every kept leaf intent with at least three hints, one hint held out of the corpus and
  asked as an in-scope query, plus the demo evaluation queries of kept intents (odd ids in A,
  even ids in B);
- off-domain: half the demo's ten off-domain queries, and 300 questions of the Korean chatbot
  data (``../shared/data/korean_chatbot_data``, MIT licence), disjoint between the splits.

The families held out differ between the splits, so A's in-scope services are partly B's
out-of-scope ones: what is selected on A is the rule, not the answers.

``{a,b,c,d}_clicks.jsonl`` (for ``chatda eval --clicks``): users' clicks to measure what clicks do
to the decision. A split's clicks are the other split's in-scope demo queries (the other
parity of ids, never one of its own queries) whose intent this split keeps, each clicked on
that intent.
"""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

from chatda.catalog.file_format import read_catalog
from chatda.catalog.models import IntentIn
from chatda.demo import catalog_path, eval_dir
from chatda.evaluation.data import EvalQuery, read_jsonl

CHATBOT = Path(__file__).resolve().parents[1] / "../shared/data/korean_chatbot_data/ChatbotData.csv"
SPLITS = {"a": 0, "b": 1, "c": 2, "d": 3}
HELD_FAMILIES = 3
OFF_DOMAIN = 300


def _families(intents: list[IntentIn]) -> dict[int, list[IntentIn]]:
    by_id = {i.id: i for i in intents}

    def root(i: IntentIn) -> int:
        while i.parent_id is not None:
            i = by_id[i.parent_id]
        return i.id

    out: dict[int, list[IntentIn]] = {}
    for i in intents:
        out.setdefault(root(i), []).append(i)
    return out


def _chatbot_questions() -> list[str]:
    with CHATBOT.open(encoding="utf-8") as fh:
        rows = [r["Q"].strip() for r in csv.DictReader(fh)]
    unique = sorted(set(r for r in rows if r))
    random.Random(27).shuffle(unique)
    return unique


def build_split(split: str) -> tuple[list[dict], list[dict], list[dict]]:
    """The corpus, queries and clicks of one split (``a`` or ``b``)."""
    index = SPLITS[split]
    intents = read_catalog(catalog_path())
    families = _families(intents)
    roots = sorted(families)
    random.Random(2700).shuffle(roots)
    held_roots = set(roots[index * HELD_FAMILIES : (index + 1) * HELD_FAMILIES])
    held = {i.id for r in held_roots for i in families[r]}
    rng = random.Random(100 + index)
    parents = {i.parent_id for i in intents}
    corpus: list[dict] = []
    queries: list[dict] = []
    for intent in intents:
        if intent.id in held:
            queries.extend(
                {"id": f"lack-{intent.id}-{n}", "text": h, "relevant": []}
                for n, h in enumerate(intent.hints)
            )
            continue
        hints = list(intent.hints)
        if intent.id not in parents and len(hints) >= 3 and intent.open:
            asked = hints.pop(rng.randrange(len(hints)))
            queries.append({"id": f"hint-{intent.id}", "text": asked, "relevant": [intent.id]})
        corpus.append({"id": intent.id, "title": intent.name, "text": "\n".join(hints)})
    demo: list[EvalQuery] = read_jsonl(eval_dir() / "intents_queries.jsonl", EvalQuery)
    clicks: list[dict] = []
    for q in demo:
        number = int(q.id.lstrip("q"))
        relevant = [r for r in q.relevant if int(r) not in held]
        if number % 2 != index % 2:
            clicks.extend({"text": q.text, "clicked": r} for r in relevant[:1])
            continue
        kind = "demo-in" if relevant else ("demo-lack" if q.relevant else "demo-off")
        queries.append({"id": f"{kind}-{q.id}", "text": q.text, "relevant": relevant})
    chat = _chatbot_questions()[index * OFF_DOMAIN : (index + 1) * OFF_DOMAIN]
    queries.extend({"id": f"chat-{n}", "text": t, "relevant": []} for n, t in enumerate(chat))
    return corpus, queries, clicks


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        corpus, queries, clicks = build_split(split)
        for name, rows in (("corpus", corpus), ("queries", queries), ("clicks", clicks)):
            path = out / f"{split}_{name}.jsonl"
            path.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8"
            )
        n_in = sum(1 for q in queries if q["relevant"])
        print(
            f"{split}: {len(corpus)} intents, {n_in} in-scope, {len(queries) - n_in} out, "
            f"{len(clicks)} clicks"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
