"""Headless Chromium driven by selenium (Debian's chromium and chromium-driver), with a WAV file as its
microphone: a real browser on the desk and phone pages."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.integration.peers import require

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files in ``directory``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = directory / "ivrd.pem", directory / "ivrd.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def tone_wav(path: Path, hz: float, seconds: float = 30.0) -> Path:
    """A 48 kHz mono sine, as Chromium's fake microphone wants it."""
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(path), "synth", str(seconds), "sine",
                    str(hz), "vol", "0.3"], check=True)  # fmt: skip
    return path


def speech_wav(text: str, path: Path, *, before: float = 1.0, after: float = 2.0) -> Path:
    """``text`` said by espeak-ng with silence around it, as Chromium's fake microphone wants it (it loops)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path), "pad", str(before), str(after)],
                   check=True, capture_output=True)  # fmt: skip
    return path


@contextlib.contextmanager
def chromium(microphone: Path | None = None) -> Iterator[Any]:
    """A headless Chromium with its own profile; ``microphone`` (a WAV) is what getUserMedia hears. It takes
the tests' self-signed certificates."""
    require("chromium", "chromedriver", "sox")
    profile = Path(tempfile.mkdtemp(prefix="ivrd-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--autoplay-policy=no-user-gesture-required", "--ignore-certificate-errors",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    if microphone is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={microphone}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
