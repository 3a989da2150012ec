"""``python -m terminal`` — the same entry point as ``pos-terminal``."""

import sys

from terminal.cli import main

sys.exit(main())
