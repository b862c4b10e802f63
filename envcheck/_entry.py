"""``envcheck``'s console-script entry point (also ``python -m envcheck``).

envcheck is a short-lived process whose start-up is mostly imports, which allocate many objects
and keep triggering the cyclic garbage collector for nothing: it is switched off before the CLI
loads (~7% of a default report here) and back on for the long-running subcommands (smoke,
bench, cluster), which ``envcheck.cli`` does once it knows which command runs.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from envcheck.cli import main as cli_main

    cli_main()
