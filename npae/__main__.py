"""The npae command line: ``python -m npae COMMAND``.

``gradcheck``  check every layer, loss and penalty against central differences (float64);
               prints a report per check and exits 1 if any fails.
"""

from __future__ import annotations

import argparse
import sys


def _gradcheck(args) -> int:
    from .gradcheck import run_all

    return 0 if run_all(seed=args.seed) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m npae", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    g = sub.add_parser("gradcheck", help="gradient-check every layer, loss and penalty (float64)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    g.set_defaults(func=_gradcheck)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
