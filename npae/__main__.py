"""``python -m npae COMMAND``: the command line, :mod:`npae.cli`."""

import sys

from npae.cli import main, run  # noqa: F401 (main: the entry point, also importable from here)

if __name__ == "__main__":
    sys.exit(run())
