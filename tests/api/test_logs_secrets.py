"""Secrets never reach a log or a terminal (issue 23, item 5).

A real API process (``chatda serve``, its own logging set-up and uvicorn) gets a request whose
handler logs the Authorization header and then fails: the log holds one plain traceback, no
local variables, and neither token nor the Milvus URI's password, in text and JSON mode. The
same process is asked for URLs that carry the tokens percent-encoded in their query string, as
clients send them: uvicorn's access line prints the query as sent, and it must print ``***``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from typer.testing import CliRunner

from chatda.logs import configure_logging
from chatda.redaction import Redactor
from chatda.settings import get_settings
from cli.main import app
from tests.api.api_process import api_process
from tests.api.failing_route_cli import FAILING_PATH, FAILURE

# characters a URL must encode (+ / = % & ? #), a space (``+`` in a form-encoded query) and a
# non-ASCII one (two UTF-8 bytes, two escapes)
ADMIN_TOKEN = "Zk3+q/Pw9=Lm%adm1n&x"
PUBLISHER_TOKEN = "pUb+/=tok3n?xyz#1 kö"
MILVUS_PASSWORD = "milvus-pw-4e1d"
TRACEBACK = "Traceback (most recent call last)"


def _every_char_encoded(value: str, lower: bool = False) -> str:
    escapes = "".join(f"%{byte:02X}" for byte in value.encode("utf-8"))
    return escapes.lower() if lower else escapes


def _lower_hex(encoded: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)


def _every_other_char_encoded(value: str) -> str:
    return "".join(_every_char_encoded(c) if i % 2 else c for i, c in enumerate(value))


# (method, path, query key, the token as the query string carries it)
ENCODED_REQUESTS = [
    ("GET", "/v1/admin/intents", "token", quote(ADMIN_TOKEN, safe="")),
    ("GET", "/v1/admin/intents", "token", _every_char_encoded(ADMIN_TOKEN, lower=True)),
    ("GET", "/v1/admin/intents", "token", _every_other_char_encoded(ADMIN_TOKEN)),
    ("GET", "/v1/search", "api_key", quote_plus(PUBLISHER_TOKEN)),
    ("GET", "/v1/search", "api_key", _every_char_encoded(PUBLISHER_TOKEN)),
    ("POST", "/v1/articles", "token", _lower_hex(quote_plus(PUBLISHER_TOKEN))),
]


@pytest.fixture(scope="module", params=["text", "json"])
def failure_log(
    request: pytest.FixtureRequest,
    models_dir: Path,
    milvus_uri: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, str]:
    """(mode, the log of an API process that served one failing request)."""
    mode = request.param
    root = tmp_path_factory.mktemp(f"logs-{mode}")
    host_port = milvus_uri.removeprefix("http://")
    env = {
        "CHATDA_DATA_DIR": str(root / "data"),
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_DEVICE": "cpu",
        "CHATDA_LOG_JSON": "true" if mode == "json" else "false",
        "CHATDA_LOG_LEVEL": "INFO",
        "CHATDA_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHATDA_PUBLISHER_TOKEN": PUBLISHER_TOKEN,
        # milvus-lite ignores credentials; the API logs the URI it connects to
        "CHATDA_MILVUS_URI": f"http://root:{MILVUS_PASSWORD}@{host_port}",
    }
    log_path = root / "api.log"
    with api_process(env, log_path, entry="tests.api.failing_route_cli") as (base, _):
        response = httpx.get(
            base + FAILING_PATH, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )
        assert response.status_code == 500
        for method, path, key, sent in ENCODED_REQUESTS:
            httpx.request(method, f"{base}{path}?{key}={sent}", timeout=30)
    return mode, log_path.read_text(encoding="utf-8")


def _failure_record(mode: str, log: str) -> str:
    """The text of the one record that logged the failing request's exception."""
    if mode == "json":
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        failed = [r for r in records if FAILURE in r.get("exception", "")]
        assert len(failed) == 1 and failed[0]["logger"] == "uvicorn.error", log
        return str(failed[0]["exception"])
    start = log.index("Exception in ASGI application")
    end = log.find("\n20", start)  # the next line that starts with a timestamp
    return log[start:] if end == -1 else log[start:end]


def test_one_plain_traceback_without_locals(failure_log: tuple[str, str]) -> None:
    mode, log = failure_log
    assert log.count(f"RuntimeError: {FAILURE}") == 1, log  # logged once, by uvicorn
    record = _failure_record(mode, log)
    assert record.count(TRACEBACK) == 1, record
    assert "raise RuntimeError(FAILURE)" in record, record  # the frames are there
    assert "locals" not in log and "authorization =" not in log, log


def test_no_secret_in_the_log(failure_log: tuple[str, str]) -> None:
    _, log = failure_log
    for secret in (ADMIN_TOKEN, PUBLISHER_TOKEN, MILVUS_PASSWORD):
        assert secret not in log, secret
    # the redaction ran on lines that did carry them
    assert "handling Bearer ***" in log, log
    assert "root:***@" in log, log


def test_no_percent_encoded_secret_in_the_access_log(failure_log: tuple[str, str]) -> None:
    _, log = failure_log
    for method, path, key, sent in ENCODED_REQUESTS:
        assert sent not in log, sent
        assert f"{method} {path}?{key}=*** HTTP/1.1" in log, (sent, log)


@pytest.mark.parametrize(
    "carried",
    [
        quote(ADMIN_TOKEN, safe=""),
        _lower_hex(quote(ADMIN_TOKEN, safe="")),
        _every_char_encoded(ADMIN_TOKEN),
        _every_other_char_encoded(ADMIN_TOKEN),
        quote(quote(ADMIN_TOKEN, safe=""), safe=""),  # encoded twice
        quote_plus(PUBLISHER_TOKEN),
        _every_char_encoded(PUBLISHER_TOKEN, lower=True),
        json.dumps(PUBLISHER_TOKEN)[1:-1],  # a JSON string, ASCII-escaped
    ],
)
def test_every_form_of_a_secret_is_masked_where_it_stands(carried: str) -> None:
    redact = Redactor([ADMIN_TOKEN, PUBLISHER_TOKEN])
    line = f'"GET /v1/x?a=1&token={carried}&b=2 HTTP/1.1" 200'
    assert redact(line) == '"GET /v1/x?a=1&token=***&b=2 HTTP/1.1" 200'


def test_text_near_a_secret_is_left_alone() -> None:
    redact = Redactor([ADMIN_TOKEN])
    line = (
        "GET /v1/x?token=Zk3%2Bq%2FPw9%3DLm%25adm1n%26y&q=%ED%95%B4 HTTP/1.1"  # last char differs
    )
    assert redact(line) == line


def test_config_masks_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATDA_DATABASE_URL", "postgresql+psycopg://chatda:pg-s3cret@db/chatda")
    monkeypatch.setenv("CHATDA_MILVUS_URI", f"http://root:{MILVUS_PASSWORD}@milvus:19530")
    monkeypatch.setenv("CHATDA_PUBLISHER_TOKEN", PUBLISHER_TOKEN)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["config"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    for secret in ("pg-s3cret", MILVUS_PASSWORD, PUBLISHER_TOKEN):
        assert secret not in result.output
    shown = json.loads(result.output)
    assert shown["database_url"] == "postgresql+psycopg://chatda:***@db/chatda"
    assert shown["sql_url"] == shown["database_url"]
    assert shown["milvus_uri"] == "http://root:***@milvus:19530"
    assert shown["publisher_token"] == "***"


def test_logging_follows_stderr_after_an_in_process_command_closed_its_own(monkeypatch) -> None:
    """A CLI command run in-process (CliRunner) configured logging on the runner's stderr buffer
    and closed it: every later record in the test session failed with "--- Logging error ---
    ValueError: I/O operation on closed file"."""
    runner_stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", runner_stderr)
    configure_logging(get_settings())
    logging.getLogger("chatda.test").warning("during the command")
    assert "during the command" in runner_stderr.getvalue()
    runner_stderr.close()
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    logging.getLogger("chatda.test").warning("after the command")
    assert "after the command" in later.getvalue()
    assert "Logging error" not in later.getvalue()
