"""Secrets (passwords, tokens) in config models: from a file or the environment, not the TOML.

A model with a secret key ``password`` also declares ``password_file``. At validation, in this
order:

1. ``password`` given in the TOML file: used as is (allowed, but the file then holds a secret);
2. ``password_file`` given: the file's text, without its trailing newline (a systemd
   credential, a Docker/Kubernetes secret, a 0600 file). Giving both is an error;
3. neither: the environment variable named for the key (e.g. ``LOAXA_MQTT_PASSWORD``), if set.

Errors name the key and the file, never the secret. Use in a model::

    _secrets = model_validator(mode="before")(secret_sources({"password": "LOAXA_MQTT_PASSWORD"}))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def read_secret_file(path: str | Path) -> str:
    """The secret in ``path`` (trailing newline removed); ValueError if unreadable or empty."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read secret file {path}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ValueError(f"secret file {path} is not UTF-8 text") from err
    secret = text.rstrip("\r\n")
    if not secret:
        raise ValueError(f"secret file {path} is empty")
    return secret


def secret_sources(env_of: Mapping[str, str]) -> Callable[[type, Any], Any]:
    """A ``mode="before"`` model validator filling each secret key (mapped to its environment
    variable in ``env_of``) from ``<key>_file`` or the environment when not given inline."""

    def fill(cls: type, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, env in env_of.items():
            file = out.get(f"{key}_file")
            if file is not None:
                if out.get(key) is not None:
                    raise ValueError(f"give {key} or {key}_file, not both")
                out[key] = read_secret_file(file)
            elif out.get(key) is None and os.environ.get(env):
                out[key] = os.environ[env]
        return out

    return classmethod(fill)  # type: ignore[return-value]
