"""Latency of `/v1/suggest` matching: 10,000 Korean finance entries, every kind of typing.

Run: .venv/bin/python bench/suggest_bench.py [--entries N] [--queries N] [--seed N]
Prints a markdown table, one row per kind of query and one for all of them, in milliseconds.
The target is p99 under 5 ms at 10,000 entries.
"""

import argparse
import random
import statistics
import time
from collections.abc import Callable

from chatda.suggest.entries import KINDS, SuggestEntry
from chatda.suggest.index import SuggestionIndex
from chatda.suggest.keys import query_keys
from chatda.text.jamo import chosung, compose
from chatda.text.keyboard import hangul_to_qwerty

BRANDS = (
    "카카오뱅크", "토스", "신한은행", "국민은행", "우리은행", "하나은행", "농협", "기업은행",
    "케이뱅크", "삼성카드", "현대카드", "롯데카드", "KB국민카드", "NH투자증권", "미래에셋",
    "키움증권", "삼성증권", "토스페이", "네이버페이", "카카오페이",
)  # fmt: skip
NOUNS = (
    "송금", "이체", "환전", "계좌", "카드", "대출", "적금", "예금", "보험", "주식", "펀드", "결제",
    "내역", "한도", "수수료", "잔액", "비밀번호", "인증서", "자동이체", "해외송금", "체크카드",
    "신용카드", "포인트", "캐시백", "이자", "금리", "만기", "연체", "청구서", "영수증", "환율",
    "공과금", "세금", "연말정산", "청약", "통장", "입금", "출금", "충전", "적립", "혜택", "쿠폰",
    "할부", "리볼빙", "현금서비스", "가상계좌", "외화", "달러", "엔화", "유로", "모임통장",
    "비상금", "투자", "배당", "수익률", "예약", "알림", "명세서", "ATM",
)  # fmt: skip
ACTIONS = (
    "조회", "신청", "해지", "변경", "등록", "취소", "확인", "내역", "방법", "안내", "하기", "보기",
    "설정", "한도", "수수료", "재발급", "분실신고", "개설", "이용", "납부",
)  # fmt: skip
TEMPLATES: tuple[Callable[[random.Random], str], ...] = (
    lambda rng: f"{rng.choice(NOUNS)} {rng.choice(ACTIONS)}",
    lambda rng: f"{rng.choice(BRANDS)} {rng.choice(NOUNS)}",
    lambda rng: f"{rng.choice(BRANDS)} {rng.choice(NOUNS)} {rng.choice(ACTIONS)}",
    lambda rng: f"{rng.choice(NOUNS)} {rng.choice(NOUNS)} {rng.choice(ACTIONS)}",
    lambda rng: f"{rng.choice(NOUNS)}",
)
JAMO_KEYS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎㅏㅐㅑㅒㅓㅔㅕㅖㅗㅛㅜㅠㅡㅣ"


def make_entries(count: int, rng: random.Random) -> list[SuggestEntry]:
    texts: set[str] = set()
    while len(texts) < count:
        texts.add(rng.choices(TEMPLATES, weights=(2, 2, 6, 3, 1))[0](rng))
    return [
        SuggestEntry(
            text=text,
            kind=rng.choice(KINDS),
            ref=f"ref-{i}",
            popularity=float(int(rng.paretovariate(1.2) * 10)),
        )
        for i, text in enumerate(sorted(texts))
    ]


def _typed_prefix(text: str, rng: random.Random) -> str:
    keys = query_keys(text)
    return compose(keys[: rng.randint(1, len(keys))])


def _typo(text: str, rng: random.Random) -> str:
    """One wrong or swapped keystroke after the first (the index takes the first key as typed)."""
    keys = list(query_keys(text)[: rng.randint(4, 12)])
    at = rng.randrange(1, len(keys))
    if rng.random() < 0.7 or at == len(keys) - 1:
        keys[at] = rng.choice(JAMO_KEYS)
    else:
        keys[at], keys[at + 1] = keys[at + 1], keys[at]
    return compose("".join(keys))


def _infix(text: str, rng: random.Random) -> str:
    words = text.split()
    word = rng.choice(words[1:] or words)
    return _typed_prefix(word, rng)


def _garbage(_: str, rng: random.Random) -> str:
    alphabet = "xqz!?@#😀🎉ﾃｽﾄ\u200b\t\n ab한"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


QUERY_KINDS: dict[str, Callable[[str, random.Random], str]] = {
    "prefix": _typed_prefix,
    "chosung": lambda text, rng: chosung(text)[: rng.randint(2, len(text))],
    "qwerty": lambda text, rng: hangul_to_qwerty(text[: rng.randint(2, len(text))]),
    "typo": _typo,
    "infix": _infix,
    "garbage": _garbage,
}


def make_queries(
    entries: list[SuggestEntry], count: int, rng: random.Random
) -> list[tuple[str, str]]:
    queries = []
    kinds = list(QUERY_KINDS)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        text = rng.choice(entries).text
        queries.append((kind, QUERY_KINDS[kind](text, rng)))
    return queries


def _percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=6_000)
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    entries = make_entries(args.entries, rng)
    queries = make_queries(entries, args.queries, rng)

    started = time.perf_counter()
    index = SuggestionIndex(entries)
    build_s = time.perf_counter() - started

    for _, query in queries[:300]:
        index.suggest(query)
    wall: dict[str, list[float]] = {kind: [] for kind in QUERY_KINDS}
    cpu: dict[str, list[float]] = {kind: [] for kind in QUERY_KINDS}
    empty: dict[str, int] = dict.fromkeys(QUERY_KINDS, 0)
    for kind, query in queries:
        started, started_cpu = time.perf_counter(), time.thread_time()
        found = index.suggest(query)
        cpu[kind].append((time.thread_time() - started_cpu) * 1000)
        wall[kind].append((time.perf_counter() - started) * 1000)
        empty[kind] += not found

    print(f"{len(index)} entries, built in {build_s:.2f} s; {len(queries)} queries")
    print("wall-clock percentiles; 'cpu p99' is this thread's CPU time, which other load on a")
    print("shared machine does not inflate\n")
    print("| queries | n | p50 ms | p95 ms | p99 ms | max ms | cpu p99 ms | no result |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    everything = list(QUERY_KINDS)
    for kind in [*everything, "all"]:
        kinds = everything if kind == "all" else [kind]
        samples = [t for k in kinds for t in wall[k]]
        cpu_samples = [t for k in kinds for t in cpu[k]]
        misses = sum(empty[k] for k in kinds)
        print(
            f"| {kind} | {len(samples)} | {_percentile(samples, 50):.3f} "
            f"| {_percentile(samples, 95):.3f} | {_percentile(samples, 99):.3f} "
            f"| {max(samples):.3f} | {_percentile(cpu_samples, 99):.3f} | {misses} |"
        )


if __name__ == "__main__":
    main()
