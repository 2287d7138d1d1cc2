"""``python -m demo``: ``carddaemon-demo`` (``serve`` or ``story``, see demo/cli.py)."""

import sys

from demo.cli import main

sys.exit(main())
