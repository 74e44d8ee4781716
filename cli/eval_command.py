"""``chatda eval``: the product's own evaluation command (intents and documents share it)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from chatda.evaluation.data import CorpusItem, EvalClick, EvalQuery, read_jsonl
from chatda.settings import get_settings


def _table(result: dict) -> str:
    lines = [
        "| method | recall@1 | recall@5 | recall@20 | mrr@10 | ndcg@10 |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in result["methods"].items():
        mark = " (default)" if name == result["default_method"] else ""
        lines.append(
            f"| {name}{mark} | {m['recall@1']:.4f} | {m['recall@5']:.4f} | {m['recall@20']:.4f} "
            f"| {m['mrr@10']:.4f} | {m['ndcg@10']:.4f} |"
        )
    return "\n".join(lines)


def eval_command(
    mode: str = typer.Option(..., help="intents | documents"),
    corpus: Path = typer.Option(..., exists=True, dir_okay=False, help="JSONL {id,title,text}"),
    queries: Path = typer.Option(..., exists=True, dir_okay=False, help="JSONL {id,text,relevant}"),
    profile: str = typer.Option("default", help="SLA profile (documents mode)"),
    model: str | None = typer.Option(None, help="model ref (default: the serving version)"),
    json_out: Path | None = typer.Option(None, "--json", help="write the result object here"),
    clicks: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="JSONL {text,clicked}: users' clicks the intent calibration reads (intents mode)",
    ),
) -> None:
    """Recall@1/5/20, MRR@10 and nDCG@10 for each scoring method, plus latency."""
    from chatda.models.encoder import open_encoder
    from chatda.models.registry import ModelRegistry, parse_ref

    if clicks and mode != "intents":
        raise typer.BadParameter("--clicks is for the intents mode")
    settings = get_settings()
    docs = read_jsonl(corpus, CorpusItem)
    qs = read_jsonl(queries, EvalQuery)
    name, version = parse_ref(model, settings.model_name) if model else (settings.model_name, None)
    encoder = open_encoder(ModelRegistry(settings.models_dir).get(name, version), settings)
    if mode == "intents":
        from chatda.evaluation.intents_eval import evaluate_intents

        clicked = read_jsonl(clicks, EvalClick) if clicks else []
        result = evaluate_intents(encoder, docs, qs, settings, clicks=clicked)
    elif mode == "documents":
        from chatda.evaluation.documents_eval import evaluate_documents
        from cli.eval_index import private_index

        result = evaluate_documents(
            encoder,
            docs,
            qs,
            profile,
            settings,
            lambda messages: private_index(messages, encoder, settings),
        )
    else:
        raise typer.BadParameter("mode must be 'intents' or 'documents'")
    result["model"] = encoder.ref
    typer.echo(_table(result))
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "methods"}, ensure_ascii=False))
    if json_out:
        json_out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
