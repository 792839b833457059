from ivrd.sip.dialog import Dialog, dialog_id_of_request
from ivrd.sip.message import parse_message
from tests.sip.helpers import request


def test_uas_dialog_identity_and_route_set():
    invite = request(extra="Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n")
    dialog = Dialog.as_uas(invite, "ours")
    assert dialog.id == ("c1", "ours", "ft")
    assert dialog_id_of_request(request("BYE", to_tag="ours")) == dialog.id
    bye = dialog.new_request("BYE", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKb")
    assert bye.uri == "sip:caller@10.0.0.2:5062"
    assert bye.headers.get_all("route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert (bye.from_.tag, bye.to.tag, bye.cseq.number) == ("ours", "ft", 2)
    assert dialog.next_hop().host == "p1.example.com"


def test_strict_router_takes_the_request_uri():
    invite = request(extra="Record-Route: <sip:strict.example.com>\r\n")
    bye = Dialog.as_uas(invite, "ours").new_request("BYE", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb")
    assert bye.uri == "sip:strict.example.com"
    assert bye.headers.get_all("route") == ["<sip:caller@10.0.0.2:5062>"]


def test_target_refresh_and_cseq_order():
    dialog = Dialog.as_uas(request(), "ours")
    reinvite = request(to_tag="ours", cseq=5, extra="").to_bytes().replace(b"10.0.0.2:5062>", b"10.0.0.3:5070>")
    msg = parse_message(reinvite)
    assert dialog.accept_remote_cseq(msg)
    dialog.target_refresh(msg)
    assert dialog.remote_target.host == "10.0.0.3"
    assert not dialog.accept_remote_cseq(request("INFO", to_tag="ours", cseq=4))
