"""The in-memory article tier: every chunk of the served collection, scored in the batch pass."""
