"""The npae command line: ``python -m npae COMMAND``.

``gradcheck``      check every layer, loss and penalty against central differences (float64);
                   prints a report per check and exits 1 if any fails.
``data download``  download MNIST or Fashion-MNIST into the user cache, verified by SHA-256.
``data info``      what is cached and where, and what the loaders would use.
"""

from __future__ import annotations

import argparse
import sys


def _gradcheck(args) -> int:
    from .gradcheck import run_all

    return 0 if run_all(seed=args.seed) else 1


def _data(args) -> int:
    from . import datasets

    if args.data_command == "info":
        print(datasets.info())
        return 0
    try:
        folder = datasets.download(args.dataset, timeout=args.timeout)
    except datasets.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dataset}: complete in {folder}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m npae", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    g = sub.add_parser("gradcheck", help="gradient-check every layer, loss and penalty (float64)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    g.set_defaults(func=_gradcheck)
    d = sub.add_parser("data", help="download datasets, or show what is cached")
    dsub = d.add_subparsers(dest="data_command", metavar="{download,info}", required=True)
    dl = dsub.add_parser("download", help="download into the user cache, verified by SHA-256")
    dl.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    dl.add_argument("--timeout", type=float, default=10.0, help="seconds without an answer before a mirror is given up")
    dsub.add_parser("info", help="what is cached and where")
    d.set_defaults(func=_data)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
