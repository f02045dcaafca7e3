"""``python -m m3el_dataset.pipeline``: the pipeline's command line."""

from .cli import main

raise SystemExit(main())
