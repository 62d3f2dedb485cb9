"""Base class for contract violations: every message names the file/field and what was expected."""

from __future__ import annotations


class ContractError(ValueError):
    """Input that does not meet one of the platform's contracts (not a bug: report it, don't trace it)."""
