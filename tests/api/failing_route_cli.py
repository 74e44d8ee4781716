"""The ``chatda`` command line, whose API has one more route: it logs the caller's
Authorization header and then fails. What an unhandled error leaves in a real process's log.

Run as ``python -m tests.api.failing_route_cli serve --port N`` (tests.api.api_process);
importing it (for the constants) changes nothing.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request

from chatda.settings import Settings

FAILING_PATH = "/v1/admin/fail"
FAILURE = "the handler failed on purpose"


def main() -> None:
    import query.app
    from cli.main import app as cli

    create_app = query.app.create_app

    def create_app_with_failing_route(settings: Settings | None = None) -> FastAPI:
        api = create_app(settings)

        @api.get(FAILING_PATH)
        async def fail(request: Request) -> None:
            authorization = request.headers.get("authorization")  # a local a traceback may show
            logging.getLogger("tests.failing_route").warning("handling %s", authorization)
            raise RuntimeError(FAILURE)

        return api

    query.app.create_app = create_app_with_failing_route  # `chatda serve` imports it at run time
    cli()


if __name__ == "__main__":
    main()
