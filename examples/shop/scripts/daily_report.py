"""Daily report script: run directly (`python scripts/daily_report.py`)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from shop.report import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
