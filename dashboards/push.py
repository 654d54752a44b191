"""Upload the dashboards to a running Grafana through its HTTP API (grafana-client).

Idempotent: the dashboards keep their fixed uids and are saved with ``overwrite=True`` into one
folder (created once, fixed uid), so pushing twice leaves one copy of each. The InfluxDB
datasource is referenced by uid; ``datasource_uid`` maps it to an existing datasource of another
uid. The token is sent as a Bearer header only: it never appears in a log line or an error.

Calls made (Grafana HTTP API, Grafana >= 10): ``GET /api/frontend/settings`` (version),
``GET /api/datasources/uid/<uid>``, ``GET /api/folders/<uid>`` then ``POST /api/folders`` if
missing, ``POST /api/dashboards/db`` per dashboard.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaUnauthorizedError,
)

from dashboards.grafana import DATASOURCE_UID, Json

log = logging.getLogger(__name__)
MIN_GRAFANA = (10, 0)
FOLDER_UID = "loaxa"
FOLDER_TITLE = "Truyền thanh cơ sở (loaxa)"


class PushError(RuntimeError):
    """Grafana refused or could not be reached; the message says what to fix."""


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def map_datasource(dashboard: Json, uid: str) -> Json:
    """A copy with every reference to the loaxa datasource pointing at ``uid``."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("uid") == DATASOURCE_UID and node.get("type") == "influxdb":
                return {**node, "uid": uid}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(copy.deepcopy(dashboard))


def _check(api: GrafanaApi, datasource_uid: str) -> str:
    try:
        version = api.version or ""
    except (AttributeError, TypeError) as err:  # no buildInfo: not a Grafana answering
        raise PushError("the server did not answer like Grafana (no buildInfo)") from err
    if _version_tuple(version)[:2] < MIN_GRAFANA:
        raise PushError(
            f"Grafana {version or '(unknown version)'} is too old: the loaxa dashboards need "
            f"Grafana >= {'.'.join(map(str, MIN_GRAFANA))}"
        )
    try:
        ds = api.datasource.get_datasource_by_uid(datasource_uid)
    except GrafanaClientError as err:
        if err.status_code == 404:
            raise PushError(
                f"Grafana has no datasource with uid {datasource_uid!r}: provision "
                "dashboards/provisioning/datasources/loaxa.yaml, or pass --datasource-uid "
                "with the uid of your InfluxDB (InfluxQL) datasource"
            ) from err
        raise
    if ds.get("type") != "influxdb":
        raise PushError(
            f"datasource {datasource_uid!r} is of type {ds.get('type')!r}, not influxdb"
        )
    return version


def _ensure_folder(api: GrafanaApi, uid: str, title: str) -> None:
    try:
        api.folder.get_folder(uid)
    except GrafanaClientError as err:
        if err.status_code != 404:
            raise
        api.folder.create_folder(title, uid=uid)
        log.info("created Grafana folder %r (uid %s)", title, uid)


def push(
    url: str,
    token: str,
    dashboards: list[Json],
    *,
    folder_uid: str = FOLDER_UID,
    folder_title: str = FOLDER_TITLE,
    datasource_uid: str = DATASOURCE_UID,
    timeout: float = 15.0,
) -> list[str]:
    """Upload ``dashboards`` into the folder; returns their uids. PushError on refusal."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        version = _check(api, datasource_uid)
        _ensure_folder(api, folder_uid, folder_title)
        uids = []
        for dashboard in dashboards:
            model = map_datasource(dashboard, datasource_uid)
            model.pop("id", None)  # Grafana matches on uid; an id from another instance clashes
            api.dashboard.update_dashboard(
                {
                    "dashboard": model,
                    "folderUid": folder_uid,
                    "overwrite": True,
                    "message": "loaxa dashboards push",
                }
            )
            uids.append(model["uid"])
            log.info("pushed dashboard %s (%s)", model["uid"], model.get("title"))
    except GrafanaUnauthorizedError as err:
        raise PushError(
            f"Grafana at {url} refused the token (401 Unauthorized): check --token, "
            "--token-file or GRAFANA_TOKEN (a service account token with Editor role)"
        ) from err
    except GrafanaClientError as err:
        if err.status_code == 403:
            raise PushError(
                f"Grafana at {url} denied the request (403 Forbidden): the token needs the "
                "Editor role and write access to folders"
            ) from err
        raise PushError(f"Grafana at {url} refused the request: {err.message}") from err
    except GrafanaException as err:
        raise PushError(f"Grafana at {url} failed: {err.message}") from err
    except niquests.exceptions.RequestException as err:
        raise PushError(f"cannot reach Grafana at {url}: {type(err).__name__}") from err
    finally:
        api.client.s.close()
    log.info("pushed %d dashboards to Grafana %s, folder %s", len(uids), version, folder_uid)
    return uids
