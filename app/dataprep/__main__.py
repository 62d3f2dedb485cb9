"""``python -m app.dataprep``: see app.dataprep.cli."""

from app.dataprep.cli import main

raise SystemExit(main())
