"""``ivrd fetch-model``: download a Vosk model the operator names, check it, and unpack it for asr.models.

The archive (zip or tar, as alphacephei.com publishes them) is checked against the SHA-256 the
operator gives before anything is unpacked; members that would land outside the target (``../``,
absolute paths, links) are refused; the model is unpacked beside its final place and moved there
only once it loads.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TextIO

from asr.base import AsrError
from asr.vosk_engine import VoskEngine

from .progress import on_stream

CHUNK = 1 << 16


class FetchError(Exception):
    pass


def download(url: str, into: BinaryIO, progress: TextIO) -> str:
    """Copy ``url`` into ``into``, its size, rate and time left shown on ``progress``; the SHA-256 of what
    came."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # the operator names the URL
            length = int(response.headers.get("Content-Length") or 0)
            shown = on_stream(progress, "downloading", total=length or None, unit="B")
            done = 0
            while chunk := response.read(CHUNK):
                into.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                shown.update(done)
            shown.end()
    except (OSError, ValueError) as exc:
        raise FetchError(f"cannot download {url}: {exc}") from None
    return digest.hexdigest()


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or tar archive, refusing any member that would land outside ``into``."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            bad = [n for n in zipped.namelist() if not _safe(n)]
            if bad:
                raise FetchError(f"the archive holds paths outside its folder: {bad[0]!r}")
            zipped.extractall(into)
        return
    try:
        with tarfile.open(archive) as tarred:
            members = tarred.getmembers()
            bad = [m.name for m in members if not _safe(m.name) or not (m.isfile() or m.isdir())]
            if bad:
                raise FetchError(f"the archive holds a path outside its folder or a link: {bad[0]!r}")
            tarred.extractall(into, filter="data")
    except tarfile.TarError as exc:
        raise FetchError(f"not a zip or tar archive: {exc}") from None


def _model_root(folder: Path) -> Path:
    """The directory holding am/ (archives usually wrap the model in one folder)."""
    if (folder / "am").is_dir():
        return folder
    inner = [p for p in folder.iterdir() if p.is_dir()]
    if len(inner) == 1 and (inner[0] / "am").is_dir():
        return inner[0]
    raise FetchError("the archive holds no Vosk model (no am/ folder)")


def fetch_model(url: str, sha256: str, target: Path, *, progress: TextIO = sys.stderr) -> Path:
    """Download, verify and unpack the model at ``url`` into ``target`` (a new directory)."""
    if target.exists():
        raise FetchError(f"{target} exists already; remove it or choose another --to")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as work:
        archive = Path(work) / "model.archive"
        with archive.open("wb") as file:
            got = download(url, file, progress)
        if got != sha256.lower():
            raise FetchError(f"checksum mismatch: expected {sha256.lower()}, got {got} (nothing was unpacked)")
        unpacked = Path(work) / "unpacked"
        unpacked.mkdir()
        print("unpacking", file=progress, flush=True)
        unpack(archive, unpacked)
        root = _model_root(unpacked)
        print("checking that the model loads", file=progress, flush=True)
        try:
            VoskEngine(root, "check")
        except AsrError as exc:
            raise FetchError(str(exc)) from None
        shutil.move(str(root), target)
    return target
