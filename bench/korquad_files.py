"""KorQuAD 1.0 dev as `chatda eval` files: each paragraph a document, each question a query.

Development evaluation only (the data's licence forbids redistributing a modified copy, and
training on it would make the number meaningless): the files are written to a temp folder,
never to the repository. Usage:
  python -m bench.korquad_files OUT_DIR [--max-queries 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1].parent / "shared/data/korquad1/KorQuAD_v1.0_dev.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--max-queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = json.loads(args.source.read_text(encoding="utf-8"))["data"]
    corpus, queries = [], []
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"kq-{a}-{p}"
            corpus.append({"id": doc_id, "title": article["title"], "text": paragraph["context"]})
            for qa in paragraph["qas"]:
                queries.append({"id": qa["id"], "text": qa["question"], "relevant": [doc_id]})
    random.Random(args.seed).shuffle(queries)
    queries = queries[: args.max_queries]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with (args.out / name).open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(corpus)} paragraphs, {len(queries)} questions → {args.out}")


if __name__ == "__main__":
    main()
