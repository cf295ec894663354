"""Shared utilities: config overrides and serialisation."""
