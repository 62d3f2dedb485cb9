"""Operator commands (thin: they call app/ and infra/); run as ``python -m scripts.<name> --help``."""
