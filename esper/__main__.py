"""The `esper` command (and `python -m esper`): Ctrl-C while the command line loads (a second
or two of imports) exits 130 with one line, like Ctrl-C later on (see `esper.cli`)."""

from __future__ import annotations

import sys


def main() -> None:
    """Console entry point."""
    try:
        from esper.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        raise SystemExit(130) from None
    cli_main()


if __name__ == "__main__":
    main()
