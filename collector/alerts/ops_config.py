"""The operator's own broker account for ``loaxa ack`` (``--ops-config FILE``), format version 1.

The file is the ``operators/<user>.toml`` that ``loaxa credentials generate`` writes (mode 0600),
used as it is::

    [mqtt]
    host = "mqtt.caobang.example.vn"
    port = 8883
    username = "loaxa-ops"
    password = "..."                       # or password_file, or $LOAXA_OPS_PASSWORD
    client_id = "loaxa-ops"                # the production broker uses the user name anyway
    tls_ca_file = "/etc/loaxa/ca.pem"      # TLS: the broker's CA

Why not the collector's account: the production broker (deploy/mosquitto) sets
``use_username_as_clientid``, so a second connection with the collector's user name ends the
collector's own connection; and its ACL lets only operator accounts publish acknowledgements.

Secrets: the password comes from, in this order, the environment variable
``LOAXA_OPS_PASSWORD``, ``password_file`` (a file holding only the password), ``password``. It is
a pydantic ``SecretStr``: no error message, repr or log line shows it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

PASSWORD_ENV = "LOAXA_OPS_PASSWORD"
OPS_CONFIG_VERSION = 1


class OpsConfigError(ValueError):
    """The operator file is missing, not TOML, or invalid; the message names the key."""


class OpsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str = Field("127.0.0.1", description="broker host")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(8883, description="broker port (TLS)")
    username: str | None = Field(None, description="operator account (role operator in the ACL)")
    password: SecretStr | None = Field(None, description="its password (file mode 0600)")
    password_file: Path | None = Field(None, description="file holding only the password")
    client_id: str | None = Field(None, description="default: the user name, as the broker does")
    tls_ca_file: Path | None = Field(None, description="CA of the broker: set to use TLS")
    timeout_s: Annotated[float, Field(gt=0)] = Field(10.0, description="connect + PUBACK wait")

    def secret(self, env: dict[str, str] | None = None) -> str | None:
        """The password: $LOAXA_OPS_PASSWORD, else password_file, else password."""
        env = os.environ if env is None else env
        if env.get(PASSWORD_ENV):
            return env[PASSWORD_ENV]
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise OpsConfigError(
                    f"password_file {self.password_file}: cannot read: {err.strerror}"
                ) from err
        return self.password.get_secret_value() if self.password else None


def load_ops_config(path: str | Path) -> OpsConfig:
    """Read the ``[mqtt]`` table of an operator file (relative paths: from the file's folder)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise OpsConfigError(f"{path}: cannot read: {err.strerror or err}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise OpsConfigError(f"{path}: not valid TOML: {err}") from err
    table = data.get("mqtt")
    if not isinstance(table, dict):
        raise OpsConfigError(f"{path}: no [mqtt] table (use operators/<user>.toml)")
    try:
        config = OpsConfig.model_validate(table)
    except ValidationError as err:
        where = "; ".join(
            f"mqtt.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in err.errors(include_url=False, include_input=False)
        )
        raise OpsConfigError(f"{path}: {where}") from err
    updates = {
        key: path.parent / value
        for key in ("password_file", "tls_ca_file")
        if (value := getattr(config, key)) is not None and not value.is_absolute()
    }
    return config.model_copy(update=updates)
