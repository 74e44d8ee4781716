"""`chatda eval`: retrieval metrics over JSONL corpora and queries, for intents and documents."""
