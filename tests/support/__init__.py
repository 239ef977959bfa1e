"""Helpers and fixtures shared by the test tiers (registered in tests/conftest.py)."""
