"""``python -m agent --config FILE``: same as ``loaxa agent --config FILE``."""

from __future__ import annotations

import sys

from loaxa.cli import main

if __name__ == "__main__":
    sys.exit(main(["agent", *sys.argv[1:]]))
