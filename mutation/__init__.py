"""Mutation testing of the money core: `make mutation` (docs/TESTING.md)."""
