"""Sample article chunks shared by the Milvus tests: Korean text, unit vectors, hostile facets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from chatda.storage.article_rows import ArticleChunk, chunk_rows
from chatda.storage.articles_schema import DENSE_DIM


def unit_vector(axis: int, noise_seed: int | None = None) -> list[float]:
    """A normalised 384-d vector pointing mostly along ``axis`` (IP == cosine)."""
    vec = np.zeros(DENSE_DIM, dtype=np.float32)
    vec[axis] = 1.0
    if noise_seed is not None:
        vec += np.random.default_rng(noise_seed).normal(0, 0.01, DENSE_DIM).astype(np.float32)
    return (vec / np.linalg.norm(vec)).tolist()


def epoch(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


def chunk(
    post_id: str,
    axis: int,
    bm25_text: str,
    *,
    category: str = "여행",
    series: str = "",
    tags: list[str] | None = None,
    published_at: int = 0,
) -> dict[str, Any]:
    """The one-chunk article ``post_id``, its vector along ``axis``."""
    article = ArticleChunk(
        post_id=post_id,
        chunk_no=0,
        title=f"{post_id} 제목",
        text=bm25_text,
        bm25_text=bm25_text,
        series=series,
        category=category,
        tags=tags or [],
        published_at=published_at,
        updated_at=published_at,
    )
    (row,) = chunk_rows([article], np.array([unit_vector(axis, noise_seed=axis)]), "test")
    return row


# Values an attacker might send as facet filters; each is also a real category below, so a
# correct filter must return exactly that one row.
HOSTILE_CATEGORIES = [
    '" or 1==1 or category == "',
    "' or 1==1 or category == '",
    'back\\slash" || true || "',
    "\\",
    '"',
    '여행" or category != "',
    'category in ["맛집"]',
]

ROWS = [
    chunk(
        "seoul-food",
        0,
        "서울 맛집 추천 냉면 서울",
        category="맛집",
        series="서울 탐방",
        tags=["서울", "맛집"],
        published_at=epoch(2026, 1, 10),
    ),
    chunk(
        "busan-sea",
        1,
        "부산 바다 여행 해운대",
        series="부산 여행기",
        tags=["부산", "바다"],
        published_at=epoch(2026, 3, 5),
    ),
    chunk(
        "seoul-trip",
        2,
        "서울 여행 코스 경복궁",
        series="서울 탐방",
        tags=["서울", "여행"],
        published_at=epoch(2026, 6, 1),
    ),
    *[
        chunk(
            f"hostile-{i}",
            10 + i,
            "기타 문서",
            category=c,
            tags=[c],
            published_at=epoch(2025, 1, 1),
        )
        for i, c in enumerate(HOSTILE_CATEGORIES)
    ],
]
