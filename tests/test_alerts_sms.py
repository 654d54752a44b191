"""SMS: the UCS-2 PDU encoder against an independent decoder, and the AT client against the
simulated modem on a real pty (multi-part Vietnamese, reply "OK <code>", errors, unplugging)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from smspdudecoder.easy import read_outgoing_sms

from collector.alerts.channels.modem import GsmModem
from collector.alerts.channels.sms import SmsChannel, SmsInbox
from collector.alerts.config import SmsConfig
from collector.alerts.errors import ModemError, PduError, RecipientUnreachable
from collector.alerts.pdu import (
    IncomingSms,
    Reassembler,
    decode_deliver,
    encode_address,
    encode_submit,
    split_ucs2,
)
from collector.alerts.router import AlertRouter
from loaxa.sim.gsm_modem import SimulatedGsmModem, encode_deliver
from tests.servers import wait_until
from tests.test_alerts_router import T0, make_inventory, opened

VI = (
    "[loaxa] Đài Nà Lầu 1 (Xã Quang Trung) MẤT TÍN HIỆU từ 03:26 29/05/2026. "
    "Nguyên nhân: mất điện. Trả lời OK 101 để xác nhận."
)


@pytest.mark.parametrize(("length", "parts"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_part_sizes(length, parts):
    text = "ệ" * length
    payloads = split_ucs2(text)
    assert len(payloads) == parts
    assert all(len(p) <= (140 if parts == 1 else 134) for p in payloads)
    pdus = encode_submit("+84912345678", text, reference=9)
    assert "".join(read_outgoing_sms(p.hex)["content"] for p in pdus) == text


def test_surrogate_pair_is_not_split_between_parts():
    text = "a" * 66 + "📻" + "b" * 10
    payloads = split_ucs2(text)
    assert [p.decode("utf-16-be") for p in payloads] == ["a" * 66, "📻" + "b" * 10]


def test_submit_pdu_fields_decode_with_smspdudecoder():
    pdus = encode_submit("+84912345678", VI, reference=7, validity_hours=24)
    assert len(VI) > 70 and len(pdus) == 2
    decoded = [read_outgoing_sms(p.hex) for p in pdus]
    assert {d["recipient"] for d in decoded} == {"+84912345678"}
    assert "".join(d["content"] for d in decoded) == VI
    assert pdus[0].hex.startswith("0051000B914819325476F80008A7")  # UDHI, intl, UCS-2, VP=24 h
    assert all(p.tpdu_length == len(p.hex) // 2 - 1 for p in pdus)
    assert encode_address("0912345678") == "0A819021436587"


@pytest.mark.parametrize("bad", ["+84 912", "abc", "", "+"])
def test_bad_phone_numbers_are_named(bad):
    with pytest.raises(PduError, match="phone number"):
        encode_address(bad)


def test_deliver_decoding_gsm7_and_ucs2():
    assert decode_deliver(encode_deliver("+84912345678", "OK 123")).text == "OK 123"
    sms = decode_deliver(encode_deliver("+84912345678", "OK 123 đã xử lý"))
    assert (sms.sender, sms.text) == ("+84912345678", "OK 123 đã xử lý")
    with pytest.raises(PduError):
        decode_deliver("07zz")


@pytest.fixture
def sim():
    modem = SimulatedGsmModem().start()
    yield modem
    modem.stop()


@pytest.fixture
def client(sim):
    modem = GsmModem(sim.port, timeout_s=3)
    yield modem
    modem.close()


def test_multipart_vietnamese_sms_arrives_exactly(sim, client):
    router = AlertRouter(make_inventory())
    notes = router.on_event(opened("cb-00001", T0), T0)
    lan = next(n for n in notes if n.recipient.id == "t-lan")
    SmsChannel(SmsConfig(port=sim.port), client).send(lan)
    assert [(s.number, s.text) for s in sim.sent] == [("+84912345678", lan.text)]
    assert len(sim.sent[0].pdus) == 2
    assert sim.commands[:5] == ["AT", "ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,0,0"]


def test_reply_ok_code_acknowledges_through_the_inbox(sim, client):
    router = AlertRouter(make_inventory())
    code = router.on_event(opened("cb-00001", T0), T0)[0].codes[0]
    client.command("AT")  # port open, echo off
    confirmations = []
    inbox = SmsInbox(
        client,
        lambda sms: confirmations.extend(router.apply_reply(sms.text, sms.sender, T0 + 60_000)),
        poll_interval_s=0.05,
    )
    sim.inject_sms("+84912345678", f"OK {code}")
    sim.inject_sms("+84900000009", "xin chào")  # not an acknowledgement: counted, ignored
    inbox.start()
    try:
        wait_until(lambda: inbox.received == 2, 10, what="both SMS read")
    finally:
        inbox.stop()
    assert router.alerts[f"cb-00001:{T0}"].acked_by == "Nông Thị Lan"
    assert [n.recipient.id for n in confirmations] == ["t-john"]
    assert router.stats["reply_not_ack"] == 1
    assert sim.inbox == {}  # read messages were deleted


def test_modem_errors_raise_modem_error(sim, client):
    sim.fail_next_sends = 1
    pdu = encode_submit("+84912345678", "thử")[0]
    with pytest.raises(ModemError, match=r"\+CMS ERROR: 500"):
        client.send_pdu(pdu)
    assert client.send_pdu(pdu) >= 0  # the next one goes through
    with pytest.raises(ModemError, match="ERROR"):
        client.command("AT+BOGUS")
    n = AlertRouter(make_inventory()).on_event(opened("cb-00001", T0), T0)[0]
    no_phone = replace(n, recipient=replace(n.recipient, phone=None))
    with pytest.raises(RecipientUnreachable):
        SmsChannel(SmsConfig(), client).send(no_phone)


def test_unplugged_modem_raises_and_reopen_fails_cleanly(sim, client):
    client.command("AT")
    sim.unplug()
    with pytest.raises(ModemError):
        client.send_pdu(encode_submit("+84912345678", "thử")[0])
    with pytest.raises(ModemError):
        client.command("AT")


def test_concatenated_incoming_sms_is_joined():
    joiner = Reassembler()
    second = IncomingSms("+84912345678", "123 đã xử lý", None, ("7-2", 2, 2))
    first = IncomingSms("+84912345678", "OK ", None, ("7-2", 1, 2))
    assert joiner.add(second) is None
    assert joiner.add(first).text == "OK 123 đã xử lý"
