"""The download path against real HTTP servers on 127.0.0.1 that the tests start themselves."""

import dataclasses
import gzip
import hashlib
import http.server
import io
import socket
import threading

import numpy as np
import pytest

from npae.cli import main
from npae.data import datasets
from npae.data.datasets import FILES, DataError, Spec
from npae.data.download import download


def tiny_files(seed=0):
    """name -> (gzipped bytes, sha256 of the uncompressed bytes) for a 3-image dataset."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 2, dtype=np.uint8),
    }
    out = {}
    for name, a in arrays.items():
        raw = bytes([0, 0, 8, a.ndim]) + np.asarray(a.shape, ">u4").tobytes() + a.tobytes()
        out[name] = (gzip.compress(raw), hashlib.sha256(raw).hexdigest())
    return out


FILESET = tiny_files()


class Server:
    """An HTTP server on 127.0.0.1; ``behaviour`` maps a path prefix to 'ok', '404',
    'corrupt' or 'truncate'. Counts the requests it serves."""

    def __init__(self, behaviour):
        server = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                prefix, name = self.path.strip("/").split("/", 1)
                mode = behaviour.get(prefix, "404")
                body = FILESET.get(name.removesuffix(".gz"), (None,))[0]
                if mode == "404" or body is None:
                    self.send_error(404)
                    return
                if mode == "corrupt":
                    raw = bytearray(gzip.decompress(body))
                    raw[-1] ^= 0xFF
                    body = gzip.compress(bytes(raw))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if mode == "truncate" else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, prefix):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tiny(monkeypatch):
    """Register a 'tiny' dataset whose checksums are those of FILESET."""
    spec = Spec("tiny", "Tiny", {n: FILESET[n][1] for n in FILES}, mirrors=())
    monkeypatch.setitem(datasets.DATASETS, "tiny", spec)
    return spec


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_then_load(tiny):
    server = Server({"a": "ok"})
    try:
        log = io.StringIO()
        folder = download("tiny", mirrors=[server.url("a")], out=log)
    finally:
        server.close()
    assert folder == datasets.cache_dir("tiny")
    assert leftovers(folder) == sorted(n + ".gz" for n in FILES)
    assert "checksum ok" in log.getvalue()
    data = datasets.load("tiny")
    assert data.source == "cache" and data[0][0].shape == (3, 1, 28, 28)


def test_404_falls_back_to_second_mirror(tiny):
    server = Server({"good": "ok"})
    try:
        download("tiny", mirrors=[server.url("missing"), server.url("good")], out=io.StringIO())
        assert server.requests == 8  # each file: one 404, one success
    finally:
        server.close()
    assert len(leftovers(datasets.cache_dir("tiny"))) == 4


def test_corrupt_file_is_rejected_and_nothing_left(tiny):
    server = Server({"bad": "corrupt"})
    try:
        with pytest.raises(DataError, match="SHA-256") as info:
            download("tiny", mirrors=[server.url("bad")], out=io.StringIO())
    finally:
        server.close()
    assert "by hand" in str(info.value)
    assert leftovers(datasets.cache_dir("tiny")) == []


def test_corrupt_first_mirror_good_second(tiny):
    server = Server({"bad": "corrupt", "good": "ok"})
    try:
        download("tiny", mirrors=[server.url("bad"), server.url("good")], out=io.StringIO())
    finally:
        server.close()
    assert datasets.load("tiny").source == "cache"


def test_truncated_transfer(tiny):
    server = Server({"cut": "truncate"})
    try:
        with pytest.raises(DataError):
            download("tiny", mirrors=[server.url("cut")], out=io.StringIO())
    finally:
        server.close()
    assert leftovers(datasets.cache_dir("tiny")) == []


def test_silent_server_times_out_instead_of_hanging(tiny):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (the kernel does) but never answers
    port = listener.getsockname()[1]
    result = {}

    def run():
        try:
            download("tiny", mirrors=[f"http://127.0.0.1:{port}/x/"], timeout=0.5, out=io.StringIO())
        except DataError as exc:
            result["error"] = str(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    listener.close()
    assert not worker.is_alive(), "download hung on a server that never answers"
    assert "timed out" in result["error"]


def test_existing_good_files_are_kept_and_bad_ones_replaced(tiny):
    server = Server({"a": "ok"})
    try:
        download("tiny", mirrors=[server.url("a")], out=io.StringIO())
        first = server.requests
        folder = datasets.cache_dir("tiny")
        (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
        log = io.StringIO()
        download("tiny", mirrors=[server.url("a")], out=log)
        assert server.requests == first + 1  # only the damaged file was fetched again
        assert "already" in log.getvalue()
    finally:
        server.close()
    assert datasets.load("tiny").source == "cache"


def test_cli_download_offline_fails_fast_with_instructions(monkeypatch, capsys):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens here: connection refused at once
    spec = dataclasses.replace(datasets.DATASETS["mnist"], mirrors=(f"http://127.0.0.1:{port}/",))
    monkeypatch.setitem(datasets.DATASETS, "mnist", spec)
    assert main(["data", "download", "--dataset", "mnist"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err and "by hand" in err and str(datasets.cache_dir("mnist")) in err


def test_cli_data_info(capsys):
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert "load_mnist() uses: sample" in out and "load_fashion_mnist() fails" in out
