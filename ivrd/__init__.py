"""ivrd: a real-time voice IVR and call-routing server."""

__version__ = "0.1.0"
