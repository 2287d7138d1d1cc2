"""``python -m demo``: the simulated store (what ``make run`` shows)."""

import sys

from demo.store import main

sys.exit(main())
