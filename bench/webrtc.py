"""Browser legs one core carries: ivrd's WebRTC side (aiortc) with audio both ways.

A server process pinned to one core holds N browser legs, each an ivrd :class:`BrowserPeer` whose
RTP session plays a looping prompt to its browser and takes the browser's audio in (as an agent's leg
does while bridged); the browsers are aiortc peers in this process, pinned to the other core, each
sending a paced 20 ms frame every 20 ms and timing what arrives. Per N it prints: the server's CPU %
of its core and ms of CPU per leg per second, how late the server's frames left its frame clock (p50,
p99), the inter-arrival jitter the browsers saw (p99 of |gap - 20 ms|), the frames the server
skipped, and the browsers' own CPU % (near 100, the figures are theirs, not the server's).
Loopback only, bounded in time::

    .venv/bin/python bench/webrtc.py [--legs 25,50,100,150] [--seconds 10] [--codec PCMU|opus]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import uvloop
from aiohttp import ClientSession, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivrd import heap
from ivrd.media import g711
from ivrd.media.clock import FrameClock
from ivrd.media.player import prompt_from_samples
from ivrd.media.rtp_session import MediaSettings
from ivrd.webrtc.peer import BrowserPeer, PeerSettings

TONE = (np.sin(2 * np.pi * 440 * np.arange(8000 * 5) / 8000) * 6000).astype(np.int16)


# ---- the server: ivrd's side -----------------------------------------------------------------------


def serve(port: int, core: int, codec: str) -> None:
    os.sched_setaffinity(0, {core})
    uvloop.run(_serve(port, codec))


async def _serve(port: int, codec: str) -> None:
    heap.settle()  # the garbage collector paced for the audio, as in the daemon
    pacing = asyncio.ensure_future(heap.pace())
    clock = FrameClock()
    prompt = prompt_from_samples("tone", TONE)
    peers: list[BrowserPeer] = []
    settings = PeerSettings(addresses=("127.0.0.1",), port_min=42000, port_max=44999, codecs=(codec,))
    marks: dict[str, Any] = {}

    async def offer(request: web.Request) -> web.Response:
        def up() -> None:
            assert peer.session is not None
            for _ in range(60):  # 5 min of it: longer than any run
                peer.session.player.play(prompt)

        peer = BrowserPeer(settings, MediaSettings(), clock, law="PCMU", on_up=up, on_gone=lambda _: None)
        peers.append(peer)
        return web.json_response({"sdp": await peer.answer((await request.json())["sdp"])})

    async def mark(_: web.Request) -> web.Response:
        lateness = clock.lateness
        marks.update(cpu=time.process_time(), wall=time.monotonic(), counts=list(lateness.counts),
                     skipped=sum(p.session.skipped for p in peers if p.session))  # fmt: skip
        return web.json_response({})

    async def stats(_: web.Request) -> web.Response:
        lateness = clock.lateness
        counts = [now - before for now, before in zip(lateness.counts, marks["counts"], strict=True)]
        skipped = sum(p.session.skipped for p in peers if p.session) - marks["skipped"]
        return web.json_response({"cpu": time.process_time() - marks["cpu"], "wall": time.monotonic() - marks["wall"],
                                  "bounds": list(lateness.bounds), "counts": counts, "skipped": skipped,
                                  "legs": sum(1 for p in peers if p.session is not None)})  # fmt: skip

    app = web.Application()
    app.router.add_post("/offer", offer)
    app.router.add_post("/mark", mark)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()
    pacing.cancel()


# ---- the browsers ------------------------------------------------------------------------------------


def opus_second() -> list[bytes]:
    """A second of the tone as 20 ms Opus packets, encoded once (a browser's encoder is not measured here)."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = 8000, "mono", "s16", 24000
    encoder.time_base = fractions.Fraction(1, 8000)
    packets = []
    for i in range(0, 8000 + 960, 160):
        frame = av.AudioFrame.from_ndarray(TONE[i : i + 160].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 8000, i, fractions.Fraction(1, 8000)
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets[-50:]


OPUS = opus_second()


class Microphone(MediaStreamTrack):
    """A packet every 20 ms on an absolute schedule: the tone in μ-law, or in Opus."""

    kind = "audio"

    def __init__(self, codec: str) -> None:
        super().__init__()
        self.n, self.start = 0, time.monotonic()
        self.payloads = OPUS if codec == "opus" else [g711.encode(TONE[:160], "PCMU")]

    async def recv(self) -> Any:
        await asyncio.sleep(max(0.0, self.start + self.n * 0.02 - time.monotonic()))
        packet = av.Packet(self.payloads[self.n % len(self.payloads)])
        packet.pts, packet.time_base = self.n * 160, fractions.Fraction(1, 8000)
        self.n += 1
        return packet


class Ear(RTCRtpReceiver):
    """A browser's receiver that only times each packet as it arrives (decoding it would cost the
    browsers' core, which must stay under the server's to measure it)."""

    gaps: list[float]
    last: float | None

    async def _handle_rtp_packet(self, packet: Any, arrival_time_ms: int) -> None:
        now = time.monotonic()
        if self.last is not None:
            self.gaps.append(abs(now - self.last - 0.02))
        self.last = now


async def browser(session: ClientSession, base: str, codec: str, gaps: list[float]) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(Microphone(codec), direction="sendrecv")
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name == codec])
    transceiver.receiver.__class__ = Ear
    transceiver.receiver.gaps, transceiver.receiver.last = gaps, None  # type: ignore[attr-defined]
    await pc.setLocalDescription(await pc.createOffer())
    async with session.post(f"{base}/offer", json={"sdp": pc.localDescription.sdp}) as response:
        answer = (await response.json())["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return pc


def percentile(bounds: list[float], counts: list[int], share: float) -> float:
    """The bucket bound under which ``share`` of the frames fell (ms)."""
    total, running = sum(counts), 0
    for bound, count in zip([*bounds, float("inf")], counts, strict=True):
        running += count
        if total and running >= share * total:
            return bound * 1000
    return float("nan")


async def run(args: argparse.Namespace, base: str) -> None:
    pcs: list[RTCPeerConnection] = []
    print(f"codec {args.codec}, {args.seconds:.0f} s per step; server pinned to core 0, browsers to core 1")
    print(f"{'legs':>5} {'server CPU %':>12} {'ms CPU/leg/s':>12} {'late p50 ms':>11} {'late p99 ms':>11} "
          f"{'gap p99 ms':>10} {'skipped':>8} {'browsers CPU %':>14}")  # fmt: skip
    async with ClientSession() as session:
        for target in args.legs:
            gaps: list[float] = []
            while len(pcs) < target:
                pcs += await asyncio.gather(*(browser(session, base, args.codec, gaps)
                                              for _ in range(min(10, target - len(pcs)))))  # fmt: skip
            await asyncio.sleep(3)  # every leg connected and flowing
            gaps.clear()
            await session.post(f"{base}/mark")
            mine = time.process_time()
            await asyncio.sleep(args.seconds)
            mine = time.process_time() - mine
            async with session.get(f"{base}/stats") as response:
                stats = await response.json()
            cpu = stats["cpu"] / stats["wall"]
            gap = float(np.percentile(gaps, 99) * 1000) if gaps else float("nan")
            per_leg = stats["cpu"] * 1000 / stats["wall"] / max(1, stats["legs"])
            print(f"{stats['legs']:>5} {cpu * 100:>12.1f} {per_leg:>12.3f} "
                  f"{percentile(stats['bounds'], stats['counts'], 0.5):>11.2f} "
                  f"{percentile(stats['bounds'], stats['counts'], 0.99):>11.2f} {gap:>10.1f} {stats['skipped']:>8} "
                  f"{mine / args.seconds * 100:>14.1f}", flush=True)  # fmt: skip
    await asyncio.gather(*(pc.close() for pc in pcs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--legs", default="25,50,100,150", type=lambda s: [int(n) for n in s.split(",")])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--codec", choices=("PCMU", "opus"), default="PCMU")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = multiprocessing.Process(target=serve, args=(port, 0, args.codec), daemon=True)
    server.start()
    os.sched_setaffinity(0, {1})
    base = f"http://127.0.0.1:{port}"

    async def wait_and_run() -> None:
        for _ in range(100):
            try:
                async with ClientSession() as session, session.post(f"{base}/mark"):
                    break
            except OSError:
                await asyncio.sleep(0.1)
        await run(args, base)

    try:
        uvloop.run(wait_and_run())
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
