"""Two write paths sharing one encoder: both send the same line-protocol strings.

- ``V1Writer``: ``POST /write?db=DB[&rp=RP]&precision=ms`` with http.client on a kept-alive
  connection, optional HTTP basic auth (InfluxDB 1.x; 2.x/3.x v1-compatibility API).
- ``V2Writer``: influxdb-client ``WriteApi`` (SYNCHRONOUS) to ``/api/v2/write``, bucket/org/token
  (InfluxDB 2.x, 3.x; 1.8+ with bucket ``db/rp`` and token ``user:password``).

``write(lines)`` returns when the server accepted the batch or raises a classified WriteError
(see errors.py and classify.py); writers never retry, the drainer decides.
"""

from __future__ import annotations

import base64
import http.client
import urllib.parse
from collections.abc import Sequence
from typing import Protocol

from collector.storage.classify import classify
from collector.storage.config import InfluxApi, InfluxConfig
from collector.storage.errors import RetryableWriteError, WriteAlarmError


class Writer(Protocol):
    def write(self, lines: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class V1Writer:
    def __init__(self, config: InfluxConfig) -> None:
        self.config = config
        url = urllib.parse.urlsplit(config.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"influx.url {config.url!r} is not an http(s) URL")
        self._https = url.scheme == "https"
        self._host, self._port = url.hostname, url.port
        params = {"db": config.db, "precision": "ms"}
        if config.rp:
            params["rp"] = config.rp
        self._base = url.path.rstrip("/")
        self._path = f"{self._base}/write?{urllib.parse.urlencode(params)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if config.user:
            token = f"{config.user}:{config.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.config.timeout_s)
        return self._conn

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict]:
        for attempt in (1, 2):
            fresh = self._conn is None
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as err:
                self.close()  # a half-used keep-alive connection cannot be trusted
                # A kept-alive connection the server (or a proxy) closed while idle fails at
                # once: try one fresh connection before calling it a failure (writes are
                # idempotent). Timeouts are real failures.
                if fresh or attempt == 2 or isinstance(err, TimeoutError):
                    raise RetryableWriteError(
                        f"{self.config.url}: connection failed: {err}"
                    ) from err
                continue
            if resp.will_close:
                self.close()
            return resp.status, data, dict(resp.getheaders())
        raise AssertionError("unreachable")

    def write(self, lines: Sequence[str]) -> None:
        body = "\n".join(lines).encode()
        status, data, headers = self._post(self._path, body, self._headers)
        error = classify(status, data, headers, api="v1")
        if error:
            raise error

    def create_database(self) -> None:
        """CREATE DATABASE (idempotent in InfluxDB); classified errors as for writes."""
        q = urllib.parse.urlencode({"q": f'CREATE DATABASE "{self.config.db}"'})
        headers = {**self._headers, "Content-Type": "application/x-www-form-urlencoded"}
        status, data, hdrs = self._post(f"{self._base}/query", q.encode(), headers)
        error = classify(status, data, hdrs, api="v1")
        if error:
            raise error

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class V2Writer:
    def __init__(self, config: InfluxConfig) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.config = config
        self._client = InfluxDBClient(
            url=config.url,
            token=config.token or "",
            org=config.org,
            timeout=int(config.timeout_s * 1000),
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: Sequence[str]) -> None:
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record=list(lines),
                write_precision=WritePrecision.MS,
            )
        except ApiException as err:
            body = (
                err.body.decode("utf-8", "replace")
                if isinstance(err.body, bytes)
                else (err.body or "")
            )
            headers = {str(k): str(v) for k, v in (err.headers or {}).items()}
            error = classify(int(err.status or 0), body, headers, api="v2")
            if error is None:  # a 2xx raised as an exception: treat as unknown server trouble
                raise WriteAlarmError(f"unexpected response {err.status}", err.status) from err
            raise error from err
        except Exception as err:  # urllib3 connection/timeout errors have no common base here
            raise RetryableWriteError(f"{self.config.url}: connection failed: {err}") from err

    def close(self) -> None:
        self._client.close()


def make_writer(config: InfluxConfig) -> V1Writer | V2Writer:
    return V2Writer(config) if config.api is InfluxApi.V2 else V1Writer(config)
