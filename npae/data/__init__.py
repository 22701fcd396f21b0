"""The data npae reads: :mod:`~npae.data.datasets` (MNIST and Fashion-MNIST, where the loaders look),
:mod:`~npae.data.idx` (the strict IDX reader), :mod:`~npae.data.images` (your own images and arrays),
:mod:`~npae.data.download` (the verified download); and the embedded MNIST sample
(``mnist-sample/``, made by ``make_sample.py``, described in README.md here)."""

from .datasets import Dataset, load_fashion_mnist, load_mnist
from .idx import DataError, read_idx
from .images import load_images

__all__ = ["DataError", "Dataset", "load_fashion_mnist", "load_images", "load_mnist", "read_idx"]
