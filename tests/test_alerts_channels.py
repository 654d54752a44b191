"""Channels against real peers: aiosmtpd (STARTTLS + login), a local http.server, Mosquitto,
and the dispatcher falling back from an unplugged modem to e-mail."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from collector.alerts.channels.email import EmailChannel
from collector.alerts.channels.modem import GsmModem
from collector.alerts.channels.mqtt import MqttAckListener, MqttChannel
from collector.alerts.channels.sms import SmsChannel
from collector.alerts.channels.webhook import WebhookChannel
from collector.alerts.config import (
    AlertsConfig,
    ChannelName,
    EmailConfig,
    MqttAlertConfig,
    RetryConfig,
    SmsConfig,
    WebhookConfig,
)
from collector.alerts.dispatcher import Dispatcher
from collector.alerts.errors import ChannelError
from collector.alerts.router import AlertRouter
from loaxa import topics
from loaxa.sim.gsm_modem import SimulatedGsmModem
from tests.servers import free_port, wait_until
from tests.test_alerts_router import T0, make_inventory, opened


def lan_alert():
    router = AlertRouter(make_inventory())
    notes = router.on_event(opened("cb-00001", T0), T0)
    return router, next(n for n in notes if n.recipient.id == "t-lan")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append(auth_data.login)
        return AuthResult(success=auth_data.password == b"mat-khau-42")


@pytest.fixture
def tls_files(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def smtp_server(tls_files):
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_ctx,
        require_starttls=True,
        auth_required=True,
        authenticator=inbox.authenticate,
    )
    controller.start()
    yield controller, inbox, ssl.create_default_context(cafile=str(cert))
    controller.stop()


def email_config(controller, **kw) -> EmailConfig:
    return EmailConfig(
        enabled=True,
        host="127.0.0.1",
        port=controller.port,
        username="loaxa",
        password="mat-khau-42",
        sender="loaxa@caobang.gov.vn",
        timeout_s=5,
        **kw,
    )


def test_email_starttls_login_utf8_subject_and_body(smtp_server):
    controller, inbox, client_ctx = smtp_server
    _, note = lan_alert()
    EmailChannel(email_config(controller), client_ctx).send(note)
    wait_until(lambda: inbox.messages, 10, what="mail delivered")
    msg = inbox.messages[0]
    assert msg["Subject"] == "[loaxa] Đài Nà Lầu 1 (Xã Quang Trung) MẤT TÍN HIỆU"
    assert msg["To"].addresses[0].display_name == "Nông Thị Lan"
    assert msg.get_content().strip() == note.text
    assert inbox.logins == [b"loaxa"]


def test_non_ascii_smtp_password_is_rejected_at_load():
    with pytest.raises(ValueError, match="ASCII"):
        EmailConfig(password="mật-khẩu")


def test_email_wrong_password_and_no_server_are_channel_errors(smtp_server):
    controller, _, client_ctx = smtp_server
    _, note = lan_alert()
    bad = email_config(controller).model_copy(update={"password": None})
    with pytest.raises(ChannelError, match="SMTP"):
        EmailChannel(bad, client_ctx).send(note)
    closed = email_config(controller).model_copy(update={"port": free_port()})
    with pytest.raises(ChannelError, match="SMTP"):
        EmailChannel(closed, client_ctx).send(note)


@pytest.fixture
def http_sink():
    received: list[dict] = []
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"body": json.loads(body), "headers": dict(self.headers)})
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received, status
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhook_posts_json_and_non_2xx_fails(http_sink):
    url, received, status = http_sink
    _, note = lan_alert()
    channel = WebhookChannel(WebhookConfig(enabled=True, url=url, headers={"X-Token": "t"}))
    channel.send(note)
    body = received[0]["body"]
    assert body["v"] == 1 and body["kind"] == "alert" and body["text"] == note.text
    assert body["codes"] == list(note.codes) and "phone" not in body["recipient"]
    assert received[0]["headers"]["X-Token"] == "t"
    status["code"] = 503
    with pytest.raises(ChannelError, match="HTTP 503"):
        channel.send(note)


def mqtt_client(broker, name: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    wait_until(client.is_connected, 10, what=f"{name} connected")
    return client


def test_mqtt_alert_published_and_ack_applied(mosquitto):
    router, note = lan_alert()
    collector, ops = mqtt_client(mosquitto, "collector"), mqtt_client(mosquitto, "ops-console")
    seen: list[mqtt.MQTTMessage] = []
    station_msgs: list[str] = []
    try:
        ops.on_message = lambda c, u, m: seen.append(m)
        ops.subscribe(topics.alert_subscription("cao-bang"), qos=1)
        collector.message_callback_add(
            topics.subscription("cao-bang"), lambda c, u, m: station_msgs.append(m.topic)
        )
        collector.subscribe(topics.subscription("cao-bang"), qos=1)
        acks = MqttAckListener(
            collector, "cao-bang", lambda code, by: router.acknowledge(code, by, T0 + 60_000)
        )
        acks.attach()
        # Wait on the subscriptions by round-trip: a malformed ack must come back rejected.
        bad = topics.ack_topic("cao-bang", "01273", "999")
        wait_until(
            lambda: ops.publish(bad, b"not json", qos=1) and acks.rejected > 0,
            10,
            interval=0.2,
            what="ack subscription active",
        )
        channel = MqttChannel(collector, "cao-bang", MqttAlertConfig(enabled=True))
        wait_until(lambda: channel.send(note) or seen, 10, interval=0.2, what="alert on the feed")
        assert seen[0].topic == "loaxa/v1/cao-bang/_ops/alert/01273/cb-00001"
        assert json.loads(seen[0].payload)["text"] == note.text
        code = note.codes[0]
        ops.publish(
            topics.ack_topic("cao-bang", "01273", code),
            json.dumps({"by": "Nông Thị Lan"}).encode(),
            qos=1,
        )
        wait_until(lambda: acks.accepted == 1, 10, what="ack applied")
        assert router.alerts[f"cb-00001:{T0}"].acked_by == "Nông Thị Lan"
        assert station_msgs == []  # the station filter never sees ops topics
    finally:
        for client in (collector, ops):
            client.loop_stop()
            client.disconnect()


def test_dispatcher_falls_back_from_unplugged_modem_to_email(smtp_server):
    controller, inbox, client_ctx = smtp_server
    _, note = lan_alert()
    sim = SimulatedGsmModem().start()
    modem = GsmModem(sim.port, timeout_s=2)
    config = AlertsConfig(retry=RetryConfig(attempts=2, backoff_s=0.01), copy_to=[])
    dispatcher = Dispatcher(
        {
            ChannelName.SMS: SmsChannel(SmsConfig(port=sim.port), modem),
            ChannelName.EMAIL: EmailChannel(email_config(controller), client_ctx),
        },
        config,
    )
    try:
        assert dispatcher.deliver(note) == ChannelName.SMS
        assert sim.sent[0].text == note.text
        sim.unplug()
        dispatcher.start()
        dispatcher.submit([note])
        dispatcher.join()
    finally:
        dispatcher.stop()
        sim.stop()
    wait_until(lambda: inbox.messages, 10, what="fallback mail")
    assert inbox.messages[0].get_content().strip() == note.text
    stats = dispatcher.stats()["channels"]
    assert stats["sms"] == {"sent": 1, "failed": 2, "fallback": 1}
    assert stats["email"] == {"sent": 1}
    assert dispatcher.undelivered == 0


def test_webhook_refused_connection_is_a_channel_error():
    _, note = lan_alert()
    url = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(ChannelError, match="webhook"):
        WebhookChannel(WebhookConfig(enabled=True, url=url, timeout_s=2)).send(note)
