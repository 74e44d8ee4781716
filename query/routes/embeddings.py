"""OpenAI-compatible ``POST /v1/embeddings``, so any standard client or load tool can drive us.

Extension: ``input_type`` ("query" | "passage") picks the e5 prompt; OpenAI has no such field
and its clients simply omit it (queries are the default, as for a search box).

A request that alone needs more encoder time than its deadline, by the batcher's measure of
its own passes, is 413 at once (``TooLarge``), the message saying what it asks for, the budget
and how many texts of its length fit. 413, not 422: nothing in it is invalid (the same texts fit
on a faster machine, and the limit is measured, not a rule a client can validate against), it
is more content than this server can process in time, which is what 413 says; and unlike 429
or 504 it tells the client that sending the same request again cannot succeed.
"""

from __future__ import annotations

import base64
from typing import Literal

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, field_validator

from chatda.text.normalize import normalize_query
from query.dependencies import State
from query.documented_errors import documented
from query.routing import ChatdaRoute

router = APIRouter(route_class=ChatdaRoute)

MAX_INPUTS = 256
TOO_LARGE = (
    "the request body is over the size limit, or the request alone needs more encoder time "
    "than its deadline (the message says how much, and how many texts fit): send fewer or "
    "shorter texts, not the same request again"
)


class EmbeddingsRequest(BaseModel):
    input: str | list[str] = Field(description="one text or a list of up to 256 texts")
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["query", "passage"] = "query"
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _bounded(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("input must not be an empty list")
            if len(value) > MAX_INPUTS:
                raise ValueError(f"at most {MAX_INPUTS} inputs per request, got {len(value)}")
        return value


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


@router.post(
    "/v1/embeddings",
    response_model=EmbeddingsResponse,
    tags=["embeddings"],
    responses={
        **documented(413, 422, 429, 503, 504),
        413: {**documented(413)[413], "description": TOO_LARGE},
    },
)
async def embeddings(body: EmbeddingsRequest, state: State) -> Response:
    """Serialised with orjson straight from the numpy rows: response-model validation of 384
    floats per text would cost more CPU than the batched model pass it answers for."""
    raw = [body.input] if isinstance(body.input, str) else body.input
    limit = state.settings.max_text_chars
    texts = [normalize_query(t, max_chars=limit).text for t in raw]
    encoder = state.encoder  # the model named in the answer is the one that encoded it
    encoded = await state.batcher.submit(
        texts, kind=body.input_type, encoder=encoder, refuse_oversized=True
    )
    vectors = encoded.embeddings
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(vec.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else vec,
        }
        for i, vec in enumerate(vectors)
    ]
    payload = {
        "object": "list",
        "data": data,
        "model": encoder.ref,
        "usage": {"prompt_tokens": encoded.tokens, "total_tokens": encoded.tokens},
    }
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )
