"""Download MNIST or Fashion-MNIST into the user cache, verified and atomic.

For each of the four files, the mirrors are tried in order. A file is streamed into a
temporary name beside its destination (``.NAME.gz.partial-PID``, which the loader never
looks at), its **uncompressed** SHA-256 is checked against the published value, and only
then is it renamed into place (``os.replace``, atomic on one filesystem). A failure of any
kind (no network, HTTP error, timeout, cut-off transfer, corrupt gzip, wrong checksum)
deletes the temporary file and moves on to the next mirror; when every mirror has failed
the error lists what each said and where to put the files by hand.
"""

from __future__ import annotations

import http.client
import os
import pathlib
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import TextIO

from .datasets import FILES, DataError, cache_dir, dataset_spec, find_file, sha256_of

MAX_DOWNLOAD = 64 << 20  # no MNIST-family file is near this; a larger stream is not ours
CHUNK = 1 << 16


def _fetch(url: str, tmp: pathlib.Path, timeout: float, out: TextIO) -> int:
    """Stream ``url`` into ``tmp``; returns the byte count. Raises on any transport failure."""
    show = hasattr(out, "isatty") and out.isatty()
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
        total = int(response.headers.get("Content-Length") or 0)
        got, last = 0, 0.0
        while True:
            block = response.read(CHUNK)
            if not block:
                break
            got += len(block)
            if got > MAX_DOWNLOAD:
                raise DataError(f"more than {MAX_DOWNLOAD:,} bytes: not an MNIST file")
            f.write(block)
            if show and time.monotonic() - last > 0.1:
                last = time.monotonic()
                pct = f"{100 * got / total:5.1f}%" if total else ""
                out.write(f"\r  {tmp.name.split('.partial')[0].lstrip('.')}: {got / 1e6:6.2f} MB {pct}")
                out.flush()
        if total and got != total:
            raise DataError(f"transfer cut off: {got:,} of {total:,} bytes")
    if show:
        out.write("\r")
    return got


def download(dataset: str = "mnist", *, dest: str | os.PathLike | None = None, mirrors: Iterable[str] | None = None,
             timeout: float = 10.0, out: TextIO | None = None) -> pathlib.Path:
    """Download ``dataset`` ("mnist" or "fashion-mnist") into ``dest`` (default: the user cache).

    Files already present with the right checksum are kept. Returns the folder. Raises
    :class:`DataError` when a file cannot be had from any mirror.
    """
    spec = dataset_spec(dataset)
    out = sys.stderr if out is None else out
    dest = cache_dir(spec.name) if dest is None else pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    for name in FILES:
        have = find_file(dest, name)
        if have is not None:
            try:
                if sha256_of(have) == spec.sha256[name]:
                    print(f"  {name}: already in {dest} (checksum ok)", file=out)
                    continue
            except DataError:
                pass
            print(f"  {have.name}: checksum mismatch, downloading it again", file=out)
        final = dest / (name + ".gz")
        tmp = dest / f".{name}.gz.partial-{os.getpid()}"
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name + ".gz"
            try:
                size = _fetch(url, tmp, timeout, out)
                digest = sha256_of(tmp)
                if digest != spec.sha256[name]:
                    published = spec.sha256[name][:16]
                    raise DataError(f"SHA-256 {digest[:16]}... does not match the published {published}...")
                os.replace(tmp, final)
                if have is not None and have != final:
                    have.unlink(missing_ok=True)  # the stale raw copy would shadow nothing, but mislead
                print(f"  {name}.gz: {size / 1e6:.2f} MB from {mirror} (checksum ok)", file=out)
                break
            except (TimeoutError, DataError, OSError, urllib.error.URLError, http.client.HTTPException,
                    ValueError) as exc:
                errors.append(f"{url}: {_reason(exc)}")
            finally:
                tmp.unlink(missing_ok=True)
        else:
            tried = "\n  ".join(errors)
            raise DataError(
                f"could not download {spec.title} file {name}; every mirror failed:\n  {tried}\n"
                f"Without network access, copy the four files ({', '.join(FILES)}, gzipped or raw) "
                f"into {dest} by hand, or point NPAE_DATA at a folder with a {spec.name}/ subfolder holding them."
            )
    return dest


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(exc) or type(exc).__name__
