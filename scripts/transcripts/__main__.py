"""``python -m scripts.transcripts``: see scripts/transcripts/command.py."""

import sys
from pathlib import Path

if not __package__:  # run as a path (python scripts/transcripts): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from scripts.transcripts.command import main

if __name__ == "__main__":
    sys.exit(main())
