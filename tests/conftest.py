"""Shared fixtures. Server helpers live in tests/servers/."""
