"""Build the embedded MNIST sample that ships inside npae.

    python -m npae.data.make_sample PATH/TO/mnist

reads the four original MNIST IDX files in PATH (gzipped or raw), checks their SHA-256
against the published values, keeps the first 10,000 training and the first 2,000 test
images with their labels (in the files' own order: no shuffling, no selection), and
writes them in the same IDX format, gzipped at level 9 with mtime 0 so the bytes are
reproducible, into npae/data/mnist-sample/. It prints the SHA-256 of each uncompressed
sample file, which npae.data.datasets.SAMPLE_SHA256 holds and checks on every load.
"""

import argparse
import pathlib
import sys

from npae.data import datasets

N_TRAIN, N_TEST = datasets.SAMPLE_SIZES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("source", type=pathlib.Path, help="folder with the original MNIST IDX files")
    parser.add_argument("--out", type=pathlib.Path, default=datasets.SAMPLE_DIR)
    args = parser.parse_args(argv)
    files = datasets._complete(args.source)
    if not files:
        parser.error(f"{args.source} does not hold the four MNIST files")
    for name, path in files.items():
        if datasets.sha256_of(path) != datasets.DATASETS["mnist"].sha256[name]:
            print(f"{path}: SHA-256 does not match the published MNIST file", file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        for kind in ("images", "labels"):
            name = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
            datasets.write_idx(args.out / (name + ".gz"), datasets.read_idx(files[name])[:n])
            print(f'    "{name}": "{datasets.sha256_of(args.out / (name + ".gz"))}",')
    return 0


if __name__ == "__main__":
    sys.exit(main())
