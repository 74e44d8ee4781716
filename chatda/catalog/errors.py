"""Catalog failures with the HTTP status they mean, so every face reports them the same way."""


class CatalogError(Exception):
    status = 400

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class IntentNotFound(CatalogError):
    status = 404


class Conflict(CatalogError):
    """Duplicate id or a stale version: nothing was written."""

    status = 409


class InvalidCatalog(CatalogError):
    """Unknown parent, a cycle, a malformed file: nothing was written."""

    status = 422
