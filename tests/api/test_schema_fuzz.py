"""Schemathesis over every operation of the API's OpenAPI schema (issue #23): no server error and
no answer the schema does not describe, against ``chatda serve`` with every engine.

The server is a real child process (``tests.api.api_process``) configured as the search tests
configure their app: the real model, the test catalog, an alias over the search corpus in the
session milvus-lite, the session Tansu broker, and both faces' tokens, so the cases reach past
authentication into every route. One test item per operation; a failure prints the request
that reproduces it, and a server error's traceback is in the server's log (``api.log`` in the
``schema-fuzz`` temporary folder).

Generation is bounded and reproducible: a fixed number of examples per operation, derandomized,
no example database; every phase runs (the schema's examples, the coverage phase's boundary and
negative values, then fuzzing), with positive and negative data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case

from chatda.settings import Settings
from query.app import create_app
from tests.api.api_process import api_process
from tests.search.conftest import (  # noqa: F401 (fixtures the served alias is built from)
    ADMIN_TOKEN,
    CATALOG_YAML,
    TEST_PROFILES,
    articles_alias,
    corpus_rows,
    wait_until_ready,
)

PUBLISHER_TOKEN = "fuzz-publisher-token"
EXAMPLES_PER_OPERATION = 25

# What every answer must satisfy, and why each check is here:
# - not_a_server_error: bad input is a 4xx, never a 5xx;
# - status_code_conformance, content_type_conformance, response_schema_conformance and
#   response_headers_conformance: every answer, errors included, is one the schema documents,
#   with the documented body and headers, so a client generated from the schema is right;
# - negative_data_rejection: input the schema forbids is refused with a 4xx, so the schema's
#   constraints are the ones the routes enforce;
# - missing_required_header, unsupported_method, allow_header_conformance, ignored_auth: a
#   documented header, the documented methods (405 with Allow otherwise) and the documented
#   security requirements hold.
# Left out: positive_data_acceptance (a valid request may rightly answer 404 for an unknown id,
# 409 for a stale version or a duplicate), max_response_time (tests assert no timings), and
# the stateful checks (use_after_free, ensure_resource_availability,
# object_level_authorization), which need links the schema does not declare and tenants the
# API does not have.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
]


def served_document() -> dict:
    """The OpenAPI document ``chatda serve`` serves: a property of the code, not of the
    settings, so it is read at collection from an app that is never started."""
    return create_app(Settings()).openapi()


schema = schemathesis.openapi.from_dict(
    served_document(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            # Each token is bound to the security scheme the schema declares for its face, so
            # a route gets the admin's or the publisher's token exactly where it says it needs
            # one (ignored_auth then checks that it does).
            "auth": {
                "openapi": {
                    "admin": {"bearer": ADMIN_TOKEN},
                    "publisher": {"bearer": PUBLISHER_TOKEN},
                }
            },
        }
    ),
)


@pytest.fixture(scope="module")
def server(
    models_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    milvus_uri: str,
    articles_alias: str,  # noqa: F811
    kafka_bootstrap: str,
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("schema-fuzz")
    catalog = root / "catalog.yaml"
    catalog.write_text(CATALOG_YAML, encoding="utf-8")
    suffix = uuid.uuid4().hex[:8]
    env = {
        "CHATDA_DATA_DIR": str(root / "data"),
        "CHATDA_MODELS_DIR": str(models_dir),
        "CHATDA_DEVICE": "cpu",
        "CHATDA_LOG_LEVEL": "WARNING",
        "CHATDA_CATALOG_FILE": str(catalog),
        "CHATDA_PROFILES": TEST_PROFILES,
        "CHATDA_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHATDA_PUBLISHER_TOKEN": PUBLISHER_TOKEN,
        "CHATDA_MILVUS_URI": milvus_uri,
        "CHATDA_ARTICLES_ALIAS": articles_alias,
        "CHATDA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CHATDA_ARTICLES_TOPIC": f"articles-fuzz-{suffix}",
        "CHATDA_EVENTS_TOPIC": f"search-events-fuzz-{suffix}",
        # A shared 2-core machine must not turn a slow answer into a 504: timing is not what
        # this test asserts.
        "CHATDA_REQUEST_TIMEOUT_MS": "60000",
    }
    with api_process(env, root / "api.log") as (base, _):
        with httpx.Client(base_url=base) as client:
            wait_until_ready(client, titles=True)
        yield base


def test_the_fuzzed_document_is_the_served_one(server: str) -> None:
    assert httpx.get(f"{server}/openapi.json").json() == served_document()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    # too_slow and friends measure this shared machine, not the API
    suppress_health_check=list(HealthCheck),
)
def test_operation_answers_as_documented(case: Case, server: str) -> None:
    case.call_and_validate(base_url=server)
