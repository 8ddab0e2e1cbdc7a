"""The errors of the versioning family: one line each, never a password."""

from __future__ import annotations


class VersioningError(RuntimeError):
    """A DVC or git step failed; the message is one line, without secrets."""


class RemoteError(VersioningError):
    """A remote is missing, misconfigured or unreachable; the message says which and why."""
