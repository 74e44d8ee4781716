"""Tests of the broker and storage infrastructure against real local engines."""
