"""``loaxa dashboards push`` against a local HTTP server standing in for Grafana's HTTP API
(Grafana cannot run here): it checks the calls grafana-client makes and their bodies."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards.generate import load_dashboards
from loaxa.cli import main

TOKEN = "glsa_secret-token-123"


class FakeGrafana:
    """Records every request; answers like Grafana 11 with one InfluxDB datasource."""

    def __init__(self, version: str = "11.2.0", datasources: tuple[str, ...] = ("loaxa-influxdb",)):
        self.version = version
        self.datasources = set(datasources)
        self.folders: dict[str, str] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.auth: list[str | None] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: one request per connection
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.calls.append((self.command, self.path, body))
                fake.auth.append(self.headers.get("Authorization"))
                self._answer(*fake.route(self.command, self.path, body, self.headers))

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "invalid API key"}
        if (method, path) == ("GET", "/api/frontend/settings"):
            return 200, {"buildInfo": {"version": self.version}}
        if method == "GET" and path.startswith("/api/datasources/uid/"):
            uid = path.rsplit("/", 1)[1]
            if uid in self.datasources:
                return 200, {"uid": uid, "type": "influxdb"}
            return 404, {"message": "Data source not found"}
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            if uid in self.folders:
                return 200, {"uid": uid, "title": self.folders[uid]}
            return 404, {"message": "folder not found"}
        if (method, path) == ("POST", "/api/folders"):
            self.folders[body["uid"]] = body["title"]
            return 200, {"uid": body["uid"], "title": body["title"]}
        if (method, path) == ("POST", "/api/dashboards/db"):
            return 200, {"status": "success", "uid": body["dashboard"]["uid"], "version": 1}
        return 404, {"message": "not found"}

    def dashboard_posts(self) -> list[Any]:
        return [b for m, p, b in self.calls if (m, p) == ("POST", "/api/dashboards/db")]


@pytest.fixture
def grafana():
    servers: list[FakeGrafana] = []
    before = {t.name for t in threading.enumerate()}

    def start(**kwargs: Any) -> FakeGrafana:
        fake = FakeGrafana(**kwargs)
        fake.thread.start()
        servers.append(fake)
        return fake

    yield start
    for fake in servers:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(5)
        assert not fake.thread.is_alive()
    leftover = {t.name for t in threading.enumerate()} - before
    assert not leftover, f"threads left behind: {leftover}"


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return str(path)


def test_push_uploads_the_committed_json_into_a_folder_idempotently(grafana, token_file):
    fake = grafana()
    argv = ["dashboards", "push", "--url", fake.url, "--token-file", token_file]
    assert main(argv) == 0
    first = list(fake.calls)
    assert [(m, p) for m, p, _ in first[:4]] == [
        ("GET", "/api/frontend/settings"),
        ("GET", "/api/datasources/uid/loaxa-influxdb"),
        ("GET", "/api/folders/loaxa"),
        ("POST", "/api/folders"),
    ]
    assert first[3][2] == {"title": "Truyền thanh cơ sở (loaxa)", "uid": "loaxa"}
    committed = {d["uid"]: d for d in load_dashboards()}
    posts = fake.dashboard_posts()
    assert {p["dashboard"]["uid"] for p in posts} == set(committed)
    for post in posts:
        assert post["dashboard"] == committed[post["dashboard"]["uid"]]
        assert post["folderUid"] == "loaxa" and post["overwrite"] is True
    assert set(fake.auth) == {f"Bearer {TOKEN}"}

    fake.calls.clear()
    assert main(argv) == 0  # again: the folder exists, the same uids are overwritten
    assert ("POST", "/api/folders") not in [(m, p) for m, p, _ in fake.calls]
    assert fake.dashboard_posts() == posts


def test_datasource_is_mapped_by_uid(grafana, token_file):
    fake = grafana(datasources=("influx-prod",))
    argv = [
        "dashboards",
        "push",
        "--url",
        fake.url,
        "--token-file",
        token_file,
        "--datasource-uid",
        "influx-prod",
    ]
    assert main(argv) == 0
    bodies = json.dumps(fake.dashboard_posts())
    assert "loaxa-influxdb" not in bodies
    assert bodies.count('"uid": "influx-prod"') > 20


def test_token_from_environment(grafana, monkeypatch):
    fake = grafana()
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert main(["dashboards", "push", "--url", fake.url]) == 0
    assert len(fake.dashboard_posts()) == 3


def test_bad_token_is_refused_clearly_and_never_logged(grafana, tmp_path, caplog):
    fake = grafana()
    wrong = tmp_path / "wrong"
    wrong.write_text("glsa_wrong-token-999")
    assert main(["dashboards", "push", "--url", fake.url, "--token-file", str(wrong)]) == 1
    assert "refused the token (401 Unauthorized)" in caplog.text
    assert "glsa_wrong-token-999" not in caplog.text
    assert fake.dashboard_posts() == []


def test_old_grafana_is_refused(grafana, token_file, caplog):
    fake = grafana(version="9.5.2")
    assert main(["dashboards", "push", "--url", fake.url, "--token-file", token_file]) == 1
    assert "Grafana 9.5.2 is too old" in caplog.text
    assert fake.dashboard_posts() == []


def test_missing_datasource_is_named(grafana, token_file, caplog):
    fake = grafana(datasources=())
    assert main(["dashboards", "push", "--url", fake.url, "--token-file", token_file]) == 1
    assert "no datasource with uid 'loaxa-influxdb'" in caplog.text


def test_no_token_and_unreachable_grafana(monkeypatch, caplog, token_file):
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    assert main(["dashboards", "push", "--url", "http://127.0.0.1:9"]) == 2
    assert "no Grafana token" in caplog.text
    assert (
        main(["dashboards", "push", "--url", "http://127.0.0.1:9", "--token-file", token_file]) == 1
    )
    assert "cannot reach Grafana at http://127.0.0.1:9" in caplog.text
