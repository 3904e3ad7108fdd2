"""Helpers that start real brokers and servers for the tests (no mocks of our own code)."""
