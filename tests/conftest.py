"""Shared fixtures live in tests/fixtures/ (one module per engine) and are registered here."""

pytest_plugins = [
    "tests.fixtures.model",
    "tests.fixtures.engines",
]
