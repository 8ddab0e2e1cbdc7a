"""`python -m kwsops.tui [workspace]`: the operations console."""

from __future__ import annotations

import sys
from pathlib import Path

from kwsops.tui.app import main

main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
