"""Helpers the test modules share (fixtures live in conftest.py files)."""
