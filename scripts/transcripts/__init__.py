"""The manual's transcripts and figures, produced from real runs: ``python -m scripts.transcripts`` runs each command
of the catalog (scripts/transcripts/catalog.py), records its normalised output in docs/transcripts/<name>.json and
renders every ``<!-- transcript: NAME -->`` block of README.md and docs/ from those recordings; ``--check`` is the
drift test (tests/scripts/test_transcripts.py runs the same checks)."""
