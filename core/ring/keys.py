"""Turn-signing keys: this site's private key (:class:`TurnSigner`) and the public
key lines (``ssh-ed25519 AAAA...``) a ring lists for its members, read, printed
and fingerprinted. Below both the manifest (which checks the keys a ring lists)
and :mod:`core.ring.signing` (which signs and verifies turns)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigError
from ..user_dirs import state_dir
from .names import check_name

NAMESPACE = b"hemarelay"  # every signature is over NAMESPACE + b"\0" + payload


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


def check_key_file_mode(path: Path) -> None:
    """Refuse a private key others can read (as ssh does)."""
    st = path.stat()
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"The key file {path} can be read by other users (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); restrict it with: chmod 600 {path}"
        )


class TurnSigner:
    """This site's signing key."""

    def __init__(self, site: str, key: Ed25519PrivateKey) -> None:
        self.site, self.key = site, key
        self.public = public_line(key.public_key())

    @classmethod
    def load(cls, site: str, path: Path, passphrase: str | None = None) -> "TurnSigner":
        path = Path(path).expanduser()
        try:
            check_key_file_mode(path)
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"The signing key file {path} does not exist.") from None
        except OSError as exc:
            raise ConfigError(f"The signing key file {path} cannot be read: {exc.strerror}.") from None
        try:
            key = serialization.load_ssh_private_key(data, passphrase.encode() if passphrase else None)
        except TypeError:
            raise ConfigError(
                f"The signing key {path} is protected by a passphrase: give it "
                "(HEMARELAY_KEY_PASSPHRASE, or the prompt)."
            ) from None
        except ValueError as exc:
            wrong = "incorrect password" in str(exc).lower() or "bad decrypt" in str(exc).lower()
            raise ConfigError(
                f"The signing key {path}: " + ("wrong passphrase." if wrong else "not an OpenSSH private key file.")
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"The signing key {path} is not an Ed25519 key (make one with ssh-keygen -t ed25519).")
        return cls(site, key)

    @classmethod
    def load_or_create(cls, site: str, path: Path, passphrase: str | None = None) -> "TurnSigner":
        """The key at ``path``, created (mode 0600) on first use."""
        path = Path(path).expanduser()
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            enc = (
                serialization.BestAvailableEncryption(passphrase.encode())
                if passphrase
                else serialization.NoEncryption()
            )
            data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return cls.load(site, path, passphrase)  # created meanwhile by another process
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            (path.with_name(path.name + ".pub")).write_text(f"{public_line(key.public_key())} {site}\n")
        return cls.load(site, path, passphrase)

    def sign(self, payload: bytes) -> str:
        return self.key.sign(NAMESPACE + b"\0" + payload).hex()  # hex: no '/' or '+' for scanners to trip on


def default_key_path(site: str) -> Path:
    return state_dir() / "keys" / f"ring-{site}.ed25519"


def read_signers_file(path: Path) -> dict[str, str]:
    """``site ssh-ed25519 AAAA... [comment]`` per line (OpenSSH allowed_signers style)."""
    out: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"The signers file {path} cannot be read: {exc.strerror or exc}.") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 3:
            raise ConfigError(f"{path} line {n}: expected 'site ssh-ed25519 AAAA...'.")
        site, key = parts[0], f"{parts[1]} {parts[2]}"
        try:
            check_name("site", site, f"{path} line {n}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        check_public_key(key, f"{path} line {n}")
        if site in out:
            raise ConfigError(f"{path} line {n}: site {site} is listed twice.")
        out[site] = key
    return out
