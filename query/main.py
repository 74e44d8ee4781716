"""The API process: the app ``query.app`` assembles, served by uvicorn.

``chatda serve`` dispatches here.
"""

from __future__ import annotations

import uvicorn

from chatda.settings import get_settings
from query.app import create_app


def main(host: str | None = None, port: int | None = None) -> None:
    """Serve the search API until stopped; ``None`` host or port: the settings'."""
    settings = get_settings()
    # log_config=None: uvicorn adds no handlers of its own, so its records (access lines,
    # "Exception in ASGI application" with the traceback) go through chatda.logs like any other
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
    )
