"""The SQL store: SQLite in the data dir by default, PostgreSQL in production (CHATDA_DATABASE_URL)."""
