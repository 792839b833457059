"""The daemon's HTTP side: the API and metrics (:mod:`.api`), the agents' desktops' WebSockets
(:mod:`.desktops`), and the agents' desk in the browser (:mod:`.desk`)."""

from .api import HttpServer
from .desktops import Desktops

__all__ = ["Desktops", "HttpServer"]
