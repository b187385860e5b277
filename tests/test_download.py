"""The downloader against a local HTTP server: success, checksum mismatch, 404, a cut connection, offline."""
from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading

import numpy as np
import pytest

from kmnist import datasets
from kmnist.download import ChecksumError, DownloadError, fetch


def npz_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, array)
    return buf.getvalue()


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut: set[str] = set()

    def do_GET(self):  # noqa: N802 - http.server's naming
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.files:
            self.send_error(404, "Not Found")
            return
        body = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in self.cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.files, Handler.cut = {}, set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler
    httpd.shutdown()


def tiny_release(handler, base_url: str) -> datasets.OfficialDataset:
    """A fake official release of dataset 'fake' served by the local server."""
    rng = np.random.default_rng(0)
    arrays = {"train-imgs": rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
              "train-labels": np.arange(20, dtype=np.uint8) % 2,
              "test-imgs": rng.integers(0, 255, (6, 28, 28), dtype=np.uint8),
              "test-labels": np.arange(6, dtype=np.uint8) % 2}
    files = []
    for role, array in arrays.items():
        body = npz_bytes(array)
        handler.files[f"fake-{role}.npz"] = body
        files.append(datasets.RemoteFile(f"fake-{role}.npz", hashlib.md5(body).hexdigest(), role))
    classmap = "index,codepoint,char\n0,U+3042,あ\n1,U+3044,い\n".encode()
    handler.files["fake_classmap.csv"] = classmap
    files.append(datasets.RemoteFile("fake_classmap.csv", hashlib.md5(classmap).hexdigest(), "classmap"))
    return datasets.OfficialDataset("fake", base_url, tuple(files), "fake")


def test_download_success_then_loads(server, tmp_path, monkeypatch):
    url, handler = server
    release = tiny_release(handler, url)
    seen = []
    got = datasets.download("fake", tmp_path, progress=lambda f, d, t: seen.append((f, d, t)), source=release)
    assert len(got) == 5, "every file of the release should be fetched"
    assert seen and seen[-1][1] == seen[-1][2], "progress should end at the total size"
    monkeypatch.setitem(datasets.OFFICIAL, "fake", release)
    ds = datasets.load("fake", tmp_path)
    assert ds.train.images.shape == (20, 28, 28) and [c.char for c in ds.classes] == ["あ", "い"]
    assert datasets.download("fake", tmp_path, source=release) == [], "verified files are not fetched again"
    assert not list(tmp_path.rglob("*.part")), "no temporary file may be left behind"


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    url, handler = server
    handler.files["x.npz"] = b"corrupt bytes"
    with pytest.raises(ChecksumError) as err:
        fetch(f"{url}/x.npz", tmp_path / "x.npz", "0" * 32)
    message = str(err.value)
    assert "x.npz" in message and "0" * 32 in message and hashlib.md5(b"corrupt bytes").hexdigest() in message
    assert list(tmp_path.iterdir()) == [], "a corrupt download must not leave any file"


def test_404_names_the_file(server, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError, match="missing.npz.*404"):
        fetch(f"{url}/missing.npz", tmp_path / "missing.npz", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_connection_cut_mid_file(server, tmp_path):
    url, handler = server
    body = npz_bytes(np.zeros((50, 28, 28), np.uint8) + np.arange(28, dtype=np.uint8))
    handler.files["big.npz"], handler.cut = body, {"big.npz"}
    with pytest.raises(DownloadError, match="big.npz"):
        fetch(f"{url}/big.npz", tmp_path / "big.npz", hashlib.md5(body).hexdigest())
    assert list(tmp_path.iterdir()) == [], "an interrupted download must not leave any file"


def test_offline_fails_fast_with_instructions(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: refused at once, like no network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    release = datasets.OfficialDataset("k49", f"http://127.0.0.1:{port}/k49", datasets.OFFICIAL["k49"].files, "K49")
    with pytest.raises(datasets.DataMissingError) as err:
        datasets.download("k49", tmp_path, source=release, timeout=5)
    message = str(err.value)
    assert "k49-train-imgs.npz" in message and str(tmp_path / "k49") in message and "KMNIST_DATA_DIR" in message
    assert not (tmp_path / "k49").exists() or not any((tmp_path / "k49").iterdir())
