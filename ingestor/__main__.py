"""`python -m ingestor` is the same program as `ingestor`."""

from __future__ import annotations

import sys

from ingestor.cli import main

sys.exit(main())
