"""Turn-signing public keys as text (``ssh-ed25519 AAAA...`` lines): read,
printed and fingerprinted. Below both the manifest (which checks the keys a
ring lists) and :mod:`core.ring.signing` (which signs and verifies turns)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import ConfigError


def check_public_key(line: str, what: str) -> Ed25519PublicKey:
    """An ``ssh-ed25519 AAAA...`` public key line (a trailing comment is allowed)."""
    if not isinstance(line, str) or not line.startswith("ssh-ed25519 ") or len(line) > 400:
        raise ConfigError(f"{what} is not an ssh-ed25519 public key line.")
    try:
        key = serialization.load_ssh_public_key(" ".join(line.split()[:2]).encode())
    except (ValueError, TypeError, UnicodeError):
        raise ConfigError(f"{what} is not a readable ssh-ed25519 public key.") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{what} is not an Ed25519 key.")
    return key


def public_line(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def key_fingerprint(line: str) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
