"""What a call needs of the daemon, and nothing more: handed to each call as it starts. A reload makes
a new one; a call keeps the one it started with."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from .center.center import ContactCenter
from .config import Config
from .faults import Faults
from .flowset import FlowSet
from .lookup import Lookups
from .media.service import MediaService
from .media.tts import Speaker
from .metrics import Metrics
from .records import CallRecords
from .speech import Speech
from .transcription import Transcription
from .transport import SipTransport


@dataclass(frozen=True, slots=True)
class CallServices:
    config: Config
    sip: SipTransport  # the commands: ring, answer, reject, hang up, transfer
    media: MediaService  # ports and sessions
    flows: FlowSet  # the current deployment, for the flow a call starts
    speech: Speech
    speaker: Speaker  # text to speech
    lookups: Lookups
    records: CallRecords | None
    metrics: Metrics
    disk: Executor  # recordings are written here, in order
    center: ContactCenter
    faults: Faults
    transcription: Transcription | None = None  # recorded calls to text, once over
