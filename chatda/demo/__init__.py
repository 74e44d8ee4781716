"""Hand-written demo content: a service-intent catalog, finance articles, small eval sets."""

from pathlib import Path


def catalog_path() -> Path:
    return Path(__file__).parent / "catalog.yaml"


def articles_path() -> Path:
    return Path(__file__).parent / "articles.jsonl"


def eval_dir() -> Path:
    return Path(__file__).parent / "eval"
