"""ivrd is plain Python, built by setuptools from pyproject.toml, but for one thing done here: the media
path's per-packet modules and the SIP core's per-message ones are compiled to C with mypyc. They are typed
strictly, so the same source compiles unchanged, and compiled they cost a fraction of what the interpreter
makes of them (bench/media_calls.py, bench/sip_cps.py). Where no compiled module was built, the source runs
as it is."""

from mypyc.build import mypycify
from setuptools import setup

# What every RTP packet of every call goes through, in and out.
PER_PACKET = ["ivrd/media/rtp.py", "ivrd/media/jitter.py", "ivrd/media/pacer.py", "ivrd/media/clock.py",
              "ivrd/media/player.py", "ivrd/media/rtp_session.py", "ivrd/media/session.py",
              "ivrd/media/sockets.py"]  # fmt: skip

# What every SIP message and call goes through: parsed, matched to its transaction and dialog, answered.
# (events.py stays interpreted: a few events a call, and tests hand them stand-in legs, which compiled code refuses.)
PER_MESSAGE = ["ivrd/sip/message.py", "ivrd/sip/uri.py", "ivrd/sip/build.py", "ivrd/sip/sdp.py",
               "ivrd/sip/layer.py", "ivrd/sip/dialog.py", "ivrd/sip/transaction.py", "ivrd/sip/ua.py",
               "ivrd/sip/uas.py", "ivrd/sip/uac.py", "ivrd/sip/leg.py", "ivrd/sip/legs.py",
               "ivrd/sip/counts.py", "ivrd/sip/limits.py", "ivrd/sip/flow.py", "ivrd/sip/settings.py",
               "ivrd/sip/registrar.py", "ivrd/sip/auth.py"]  # fmt: skip

setup(ext_modules=[*mypycify(PER_PACKET, opt_level="3", group_name="ivrd_media"),
                   *mypycify(PER_MESSAGE, opt_level="3", group_name="ivrd_sip")])  # fmt: skip
