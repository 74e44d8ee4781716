"""The SQL store: SQLite in the data dir by default, PostgreSQL via CHATDA_DATABASE_URL."""
