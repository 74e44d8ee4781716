"""The demo catalog as an intents evaluation set, for tests that need a catalog of realistic
size (120 intents) and labelled queries."""

from __future__ import annotations

import yaml

from chatda.demo import catalog_path, eval_dir
from chatda.evaluation.data import CorpusItem, EvalQuery, read_jsonl


def demo_set() -> tuple[list[CorpusItem], list[EvalQuery]]:
    """The demo catalog as a corpus (name, and its first hint as text) and its eval queries,
    plus queries that match nothing."""
    intents = yaml.safe_load(catalog_path().read_text("utf-8"))["intents"]
    corpus = [
        CorpusItem(id=str(i["id"]), title=i["name"], text=(i.get("hints") or [""])[0])
        for i in intents
    ]
    queries = read_jsonl(eval_dir() / "intents_queries.jsonl", EvalQuery)
    queries += [
        EvalQuery(id=f"none-{n}", text=text)
        for n, text in enumerate(["오늘 저녁 메뉴 추천해줘", "주말에 비 온대", "고양이 사료"])
    ]
    return corpus, queries
