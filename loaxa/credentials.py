"""Broker credentials from the inventory: ``loaxa credentials generate`` (credentials_cli.py).

Writes, under the output directory (mode 0700)::

    broker/passwd              Mosquitto password file ("$7$" hashes, credentials_hash.py), 0640
    broker/acl                 Mosquitto acl_file (credentials_acl.py), 0644
    agents/<station>.toml      [mqtt] snippet for that station's agent config, 0600
    agents/<station>.key/.crt  with a CA (certificate mode): its client key 0600, certificate
    collector/<user>.toml      [mqtt] snippet for a collector config, 0600
    operators/<user>.toml      [mqtt] snippet for ``loaxa ack`` / operator tools, 0600
    secrets/<user>.secret      the plaintext password, kept so that a re-run reuses it, 0600

One account per station that runs an agent; stations polled through a serial gateway have
no agent and get none. Passwords are 256-bit random tokens (``secrets.token_urlsafe(32)``),
reused on every run unless rotated; an account that left the inventory loses access because
it is no longer in ``broker/passwd``. Nothing here logs or returns a secret.

Certificate mode (``authority`` given): stations get a client certificate (credentials_certs.py)
for the broker's certificate listener instead of a password, and are left out of
``broker/passwd``; collectors and operators keep passwords on the password listener.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from collector.inventory import Inventory
from loaxa.credentials_acl import (
    Account,
    Role,
    collector_account,
    operator_account,
    render_acl,
    station_account,
)
from loaxa.credentials_certs import CertAuthority, CertificateError, issue, still_valid
from loaxa.credentials_hash import password_line

log = logging.getLogger(__name__)
_SNIPPET_DIR = {Role.STATION: "agents", Role.COLLECTOR: "collector", Role.OPERATOR: "operators"}


class CredentialsError(ValueError):
    """The accounts cannot be generated (clashing names, unreadable secret, bad option)."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int = 8883
    ca_file: str = "/etc/loaxa/ca.pem"  # where the CA certificate sits on the client
    cert_port: int = 8884  # the certificate listener (certificate mode)

    def __post_init__(self) -> None:
        for port in (self.port, self.cert_port):
            if not 1 <= port <= 65535:
                raise CredentialsError(f"broker port {port} is not 1..65535")
        if not self.host or any(c.isspace() or c in '"\\' for c in self.host):
            raise CredentialsError(f"broker host {self.host!r} is not a host name")


@dataclass
class GenerateResult:
    accounts: list[Account]
    created: list[str] = field(default_factory=list)  # user names with a new password
    reused: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)  # secrets left over from removed accounts
    skipped: dict[str, str] = field(default_factory=dict)  # station id -> why it has no account
    issued: list[str] = field(default_factory=list)  # certificate mode: new certificates


def plan_accounts(
    inventories: Iterable[Inventory],
    collectors: Iterable[str] = ("loaxa-collector",),
    operators: Iterable[str] = ("loaxa-ops",),
    skipped: dict[str, str] | None = None,
) -> list[Account]:
    """Every account the broker needs, stations first, in inventory order."""
    inventories = list(inventories)
    accounts: list[Account] = []
    for inv in inventories:
        for station in inv.stations.values():
            upstream = inv.upstreams.get(station.upstream or "")
            if upstream is not None and upstream.kind == "serial_gateway":
                if skipped is not None:
                    skipped[station.id] = f"polled by serial gateway {upstream.id}, no agent"
                continue
            accounts.append(station_account(inv.province.slug, station.commune, station.id))
    provinces = [inv.province.slug for inv in inventories]
    accounts += [collector_account(u, provinces) for u in collectors]
    accounts += [operator_account(u, provinces) for u in operators]
    names: dict[str, Role] = {}
    for a in accounts:
        if a.username in names:
            raise CredentialsError(
                f"user name {a.username!r} used twice ({names[a.username].value} and "
                f"{a.role.value}): station ids, collector and operator names must differ"
            )
        names[a.username] = a.role
    return accounts


def generate(
    inventories: Iterable[Inventory],
    out_dir: str | Path,
    broker: BrokerAddress,
    collectors: Iterable[str] = ("loaxa-collector",),
    operators: Iterable[str] = ("loaxa-ops",),
    rotate: Iterable[str] = (),
    authority: CertAuthority | None = None,
) -> GenerateResult:
    """Write the broker files and per-account snippets (see the module docstring)."""
    out = Path(out_dir)
    skipped: dict[str, str] = {}
    accounts = plan_accounts(inventories, collectors, operators, skipped)
    rotate = set(rotate)
    unknown = rotate - {a.username for a in accounts}
    if unknown:
        raise CredentialsError(f"--rotate names unknown accounts: {', '.join(sorted(unknown))}")
    result = GenerateResult(accounts, skipped=skipped)
    for sub in ("", "secrets", "broker", *_SNIPPET_DIR.values()):
        (out / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(out / sub, 0o700)
    passwd: list[str] = []
    secret_users: set[str] = set()
    for account in accounts:
        path = out / _SNIPPET_DIR[account.role] / f"{account.username}.toml"
        if authority is not None and account.role is Role.STATION:
            _certificate(out / "agents", account.username, authority, rotate, result)
            write_private(path, _cert_snippet(account, broker, authority))
            continue
        password = _secret_for(out / "secrets", account.username, rotate, result)
        secret_users.add(account.username)
        passwd.append(password_line(account.username, password))
        write_private(path, _snippet(account, password, broker))
    current = {f"{u}.secret" for u in secret_users}
    result.revoked = sorted(
        p.stem for p in (out / "secrets").glob("*.secret") if p.name not in current
    )
    write_private(out / "broker" / "passwd", "\n".join(passwd) + "\n", mode=0o640)
    write_private(out / "broker" / "acl", render_acl(accounts), mode=0o644)
    log.info(
        "credentials in %s: %d accounts (%d new, %d reused, %d rotated), %d stations without "
        "agent, %d old secrets no longer in the password file: %s",
        out,
        len(accounts),
        len(result.created),
        len(result.reused),
        len(result.rotated),
        len(skipped),
        len(result.revoked),
        ", ".join(result.revoked) or "none",
    )
    return result


def _secret_for(folder: Path, user: str, rotate: set[str], result: GenerateResult) -> str:
    path = folder / f"{user}.secret"
    if user not in rotate and path.exists():
        try:
            value = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise CredentialsError(f"cannot read the secret of {user!r} in {path}: {err}") from err
        if len(value) >= 16:
            result.reused.append(user)
            return value
        log.warning("secret of %s in %s is too short: a new one is made", user, path)
    value = secrets.token_urlsafe(32)
    write_private(path, value + "\n")
    (result.rotated if user in rotate else result.created).append(user)
    return value


def _certificate(
    folder: Path, user: str, ca: CertAuthority, rotate: set[str], result: GenerateResult
) -> None:
    key, cert = folder / f"{user}.key", folder / f"{user}.crt"
    if user not in rotate and key.exists() and still_valid(cert, ca, user):
        result.reused.append(user)
        return
    try:
        issue(ca, user, key, cert)
    except CertificateError as err:
        raise CredentialsError(f"certificate for {user!r}: {err}") from err
    result.issued.append(user)


def _cert_snippet(account: Account, broker: BrokerAddress, ca: CertAuthority) -> str:
    q = json.dumps
    where = ca.client_dir.rstrip("/")
    return (
        "\n".join(
            [
                f"# loaxa broker credential of station {account.username!r} (client certificate):",
                f"# copy {account.username}.key (mode 0600) and .crt to {where}/.",
                "[mqtt]",
                f"host = {q(broker.host)}",
                f"port = {broker.cert_port}",
                f"client_id = {q(account.username)}  # the broker uses the certificate's CN anyway",
                "",
                "[mqtt.tls]",
                f"ca_file = {q(broker.ca_file)}",
                f"cert_file = {q(f'{where}/{account.username}.crt')}",
                f"key_file = {q(f'{where}/{account.username}.key')}",
            ]
        )
        + "\n"
    )


def _snippet(account: Account, password: str, broker: BrokerAddress) -> str:
    q = json.dumps  # a JSON string of printable ASCII is a valid TOML basic string
    head = [
        f"# loaxa broker credential of {account.role.value} {account.username!r}: keep this "
        "file mode 0600, never paste it into tickets or logs.",
        "# Generated by `loaxa credentials generate`; merge the [mqtt] keys into the config.",
        "[mqtt]",
        f"host = {q(broker.host)}",
        f"port = {broker.port}",
        f"username = {q(account.username)}",
        f"password = {q(password)}",
        f"client_id = {q(account.username)}  # the broker uses the user name as client id",
    ]
    if account.role is Role.STATION:  # agent/mqtt_config.py: [mqtt.tls]
        head += ["", "[mqtt.tls]", f"ca_file = {q(broker.ca_file)}"]
    else:  # collector/ingest/config.py: tls_ca_file
        head.append(f"tls_ca_file = {q(broker.ca_file)}")
    return "\n".join(head) + "\n"


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` atomically to a file created with ``mode`` (never briefly world-readable)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
