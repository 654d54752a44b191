"""Mosquitto password-file hashes, compatible with ``mosquitto_passwd`` of Mosquitto 2.0.

Format (Mosquitto 2.0 "sha512-pbkdf2", one line per user in the password file)::

    <username>:$7$<iterations>$<base64 salt, 12 bytes>$<base64 PBKDF2-HMAC-SHA512, 64 bytes>

Mosquitto 2.0.x writes 101 iterations; the broker reads the count from the line, so any count
works. The passwords loaxa generates are 256-bit random tokens, so the iteration count adds
nothing to their strength and a low one keeps a reconnect storm of hundreds of stations cheap.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

ITERATIONS = 101  # mosquitto_passwd's default in 2.0.x
SALT_BYTES = 12  # as mosquitto_passwd
_PREFIX = "$7$"


class HashFormatError(ValueError):
    """A password-file entry that is not a Mosquitto "$7$" PBKDF2-SHA512 hash."""


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The "$7$..." hash of ``password`` that Mosquitto 2.0 accepts in a password file."""
    if not password:
        raise ValueError("an empty password cannot be hashed")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"{_PREFIX}{iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches a "$7$" hash (ours or mosquitto_passwd's)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7" or not parts[2].isdigit():
        raise HashFormatError("expected $7$<iterations>$<salt>$<hash>")
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError as err:
        raise HashFormatError(f"bad base64 in hash: {err}") from err
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(digest, expected)


def password_line(username: str, password: str) -> str:
    """One line of a Mosquitto password file (without the newline)."""
    if not username or ":" in username or any(c.isspace() for c in username):
        raise ValueError(f"user name {username!r} cannot go in a password file")
    return f"{username}:{hash_password(password)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
