"""Shared fixtures of the test suite."""

pytest_plugins = ["tests.postgres"]
