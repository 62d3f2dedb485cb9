"""Reusable CDK constructs (nouns with keyword-only typed props)."""
