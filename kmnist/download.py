"""Streamed, checksum-verified downloads that never leave a partial file under the final name."""
from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kmnist import KmnistError
from kmnist.files import atomic_open

# progress(file_name, bytes_done, bytes_total or None)
Progress = Callable[[str, int, "int | None"], None]
CHUNK = 1 << 16


class DownloadError(KmnistError, RuntimeError):
    """A download failed; the message says which file and why."""


class UnreachableError(DownloadError):
    """The server could not be reached at all (offline, DNS, refused): other files will fail alike."""


class ChecksumError(DownloadError):
    """The bytes received do not match the published MD5."""


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: Path, md5: str, progress: Progress | None = None, timeout: float = 10.0) -> Path:
    """Download `url` to `dest`, verify its MD5, and only then give it the final name."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()
    with atomic_open(dest, "wb", suffix=".part") as out:
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise DownloadError(f"{dest.name}: the server answered {e.code} {e.reason} for {url}") from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise UnreachableError(f"{dest.name}: cannot reach {url} ({reason})") from e
        with response:
            total = response.headers.get("Content-Length")
            total = int(total) if total else None
            done = 0
            if progress:
                progress(dest.name, 0, total)
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, ValueError, http.client.HTTPException) as e:
                    raise DownloadError(f"{dest.name}: connection lost after {done} bytes ({e})") from e
                if not block:
                    break
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(dest.name, done, total)
        if total is not None and done != total:
            raise DownloadError(f"{dest.name}: connection lost after {done} of {total} bytes")
        got = digest.hexdigest()
        if got != md5:
            raise ChecksumError(f"{dest.name}: checksum mismatch, expected MD5 {md5} but got {got}")
    return dest
