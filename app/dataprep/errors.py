"""Data prep's domain error: bad input or options, reported as one line naming the file/line/field."""

from __future__ import annotations

from app.contracts.errors import ContractError


class DataprepError(ContractError):
    """The manifest, images or options cannot make a dataset; the message says where and what was expected."""
