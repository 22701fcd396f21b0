"""Test-suite settings that hold for every test (the rules are in tests/README.md).

Isolation: the suite never reads the user's environment. Before any test module is
imported (several load the MNIST sample at import time), ``NPAE_DATA`` is removed and
``XDG_CACHE_HOME`` points at an empty temporary folder, so ``load_mnist()`` finds the
embedded sample whatever the machine holds; every test gets its own empty cache again
(the ``isolated`` fixture). Matplotlib draws with the file-only Agg backend, whatever
``MPLBACKEND`` says. Tests that want the full datasets name ``../shared/data`` explicitly
and skip without it (``needs_shared`` in test_datasets.py).
"""

import os
import shutil
import tempfile

import pytest

_session_cache = tempfile.mkdtemp(prefix="npae-test-cache-")
os.environ.pop("NPAE_DATA", None)
os.environ["XDG_CACHE_HOME"] = _session_cache
os.environ["MPLBACKEND"] = "Agg"


def pytest_unconfigure(config):
    shutil.rmtree(_session_cache, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty user cache of its own for each test, and no NPAE_DATA."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("NPAE_DATA", raising=False)
