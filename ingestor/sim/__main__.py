"""`python -m ingestor.sim`: the same as `ingestor sim`."""

from __future__ import annotations

import sys

from ingestor.sim.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
