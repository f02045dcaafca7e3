# Runs CLIP-ND training (`m3el_benchmark.train`) from a clone, as a script:
#
#   accelerate launch benchmark/train.py [ARGS]      # or: accelerate launch -m m3el_benchmark.train [ARGS]
#   python benchmark/train.py [ARGS]                 # or: python -m m3el_benchmark.train [ARGS]
#
# The library lives in the installed package `m3el_benchmark`; this file only puts the clone first on the path.
"""Script entry point of `m3el_benchmark.train`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from m3el_benchmark.train import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli())
