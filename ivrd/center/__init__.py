"""The contact center at run time: callers in line, offers to agents, callbacks, announcements.

The :class:`~routing.matcher.Router` decides who takes whom; these rooms carry it out. Calls reach the
center through :class:`~ivrd.center.center.ContactCenter`'s methods and hand it a
:class:`~ivrd.center.model.Caller`, the small interface through which it answers them; it never reaches
into a call. The legs it places go through a :class:`~ivrd.center.dialer.Dialer` (SIP and media).
"""
