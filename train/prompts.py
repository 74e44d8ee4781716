"""The one place training data gets the e5 prompts serving uses.

Serving prefixes text in ``Encoder.tokenize`` from the manifest; the trainer would not, so every
training and selection text goes through :func:`with_prompt` with the *same* manifest. STS and NLI
pairs are symmetric, so both sides are queries; retrieval pairs are query → passage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from chatda.models.registry import ModelManifest

Kind = Literal["query", "passage"]


def with_prompt(manifest: ModelManifest, kind: Kind, texts: Iterable[str]) -> list[str]:
    """Prefix ``texts`` with the manifest's prompt for ``kind``, exactly as serving does."""
    prompt = manifest.prompts.query if kind == "query" else manifest.prompts.passage
    return [prompt + text for text in texts]
