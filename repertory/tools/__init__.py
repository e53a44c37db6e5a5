"""Checks on the code base itself (`python -m repertory.tools.layers`)."""
