"""Station client certificates for the broker's certificate listener (optional, 8884).

The certificate's Common Name is the station id; Mosquitto's ``use_identity_as_username``
makes it the user name, so the ACL of loaxa/credentials_acl.py applies unchanged and no
password is involved. Certificates are made with the ``openssl`` command (Debian's openssl,
1.1 or 3.x): an EC P-256 key per station and an X.509 v3 certificate with
``extendedKeyUsage = clientAuth``, signed by the CA given to ``loaxa credentials generate``.
A CA key protected by a passphrase is read with ``-passin env:LOAXA_CA_PASSPHRASE``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

RENEW_BEFORE_S = 30 * 86_400  # a certificate expiring sooner than this is reissued
PASSPHRASE_ENV = "LOAXA_CA_PASSPHRASE"


class CertificateError(RuntimeError):
    """openssl could not make or read a certificate; the message carries openssl's reason."""


@dataclass(frozen=True)
class CertAuthority:
    cert: Path  # CA certificate (PEM), also the broker listener's cafile
    key: Path  # CA private key (PEM); keep it offline, use it only here
    days: int = 825
    client_dir: str = "/etc/loaxa"  # where a station keeps its key and certificate


def _openssl(*argv: str | Path) -> str:
    try:
        done = subprocess.run(
            ["openssl", *map(str, argv)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CertificateError(f"cannot run openssl: {err}") from err
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["no message"]
        raise CertificateError(f"openssl {argv[0]} failed: {reason[0]}")
    return done.stdout


def still_valid(cert: Path, ca: CertAuthority, common_name: str) -> bool:
    """True if ``cert`` exists, is signed by the CA, names ``common_name`` and is not about
    to expire (then it is kept across runs)."""
    if not cert.exists():
        return False
    try:
        _openssl("verify", "-CAfile", ca.cert, cert)
        _openssl("x509", "-in", cert, "-noout", "-checkend", str(RENEW_BEFORE_S))
        subject = _openssl("x509", "-in", cert, "-noout", "-subject", "-nameopt", "multiline")
    except CertificateError:
        return False
    return any(
        ln.split("=", 1)[-1].strip() == common_name
        for ln in subject.splitlines()
        if "commonName" in ln
    )


def issue(ca: CertAuthority, common_name: str, key_out: Path, cert_out: Path) -> None:
    """A new key (mode 0600) and certificate (0644) for ``common_name``, signed by ``ca``."""
    with tempfile.TemporaryDirectory(dir=key_out.parent, prefix=".issue-") as tmp:
        os.chmod(tmp, 0o700)
        key, csr, cert = Path(tmp, "key"), Path(tmp, "csr"), Path(tmp, "crt")
        ext = Path(tmp, "ext")
        ext.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"
        )
        _openssl(
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            f"/CN={common_name}",
        )
        passin = ["-passin", f"env:{PASSPHRASE_ENV}"] if PASSPHRASE_ENV in os.environ else []
        _openssl(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca.cert,
            "-CAkey",
            ca.key,
            *passin,
            "-set_serial",
            str(secrets.randbits(63)),
            "-days",
            str(ca.days),
            "-sha256",
            "-extfile",
            ext,
            "-out",
            cert,
        )
        os.chmod(key, 0o600)
        os.chmod(cert, 0o644)
        os.replace(key, key_out)
        os.replace(cert, cert_out)
