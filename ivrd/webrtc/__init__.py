"""Browser legs: an agent's (or a tester's) browser tab as one side of a call, through aiortc.

The browser's audio enters the same :class:`~ivrd.media.rtp_session.RtpSession` every SIP leg has
(jitter buffer, statistics, recording, relay to the other leg), so a browser leg is bridged, counted
and recorded exactly like a phone; aiortc carries ICE, DTLS-SRTP and Opus where the browser wants it.
"""
