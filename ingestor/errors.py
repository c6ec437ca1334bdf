"""Errors an operator can act on: printed as one line (or one block), never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """An error whose message tells the operator what to do; `exit_code` is the process status."""

    exit_code = 1


class ConfigurationError(UserError):
    exit_code = 2


class DatabaseUnavailable(UserError):
    """The database cannot be reached or refused the login."""


class SchemaBehind(UserError):
    """The database schema is older than this program; run `ingestor migrate`."""


class MigrationError(UserError):
    """A migration cannot be applied (tampered file, missing extension, SQL error)."""


class GuardrailViolation(PermissionError):
    """A role tried to write something the ownership contract gives to another role."""
