"""``carddaemon-demo``: the simulated store.

* ``carddaemon-demo serve [--folder DIR]`` - the daemon on the simulated store, in the
  foreground, until Ctrl-C (what ``make run`` starts);
* ``carddaemon-demo story [--out FILE.png] [--realtime]`` - the scripted walk through a
  technician's look at a card, a member paying and a receipt (what ``make demo`` shows; the
  receipt preview goes to ``--out``, a file in a folder that exists). Without a command
  (``carddaemon-demo --out FILE.png``) the story runs, as before.
* ``carddaemon-demo chain [--offline]`` - two stores on one chain ledger (a private
  PostgreSQL): a card dump spent at store A and restored at store B is caught.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":
        from demo.serve import main as serve

        return serve(args[1:])
    if args and args[0] == "chain":
        from demo.chain import main as chain

        return chain(args[1:])
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args and args[0] == "story":
        args = args[1:]
    from demo.store import main as story

    return story(args)
