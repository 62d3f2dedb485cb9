"""``python -m scripts.transcripts``: see scripts/transcripts/command.py."""

import sys

from scripts.transcripts.command import main

sys.exit(main())
