"""The ring server's SSH host key, shown to the user before it is trusted.

On the first connection the settings dialog shows the server's key type and
``SHA256:`` fingerprint for the user to compare with what the server's
administrator published; only after they confirm is that exact key (not
whatever a later connection presents) written to known_hosts. A key that
differs from the recorded one is never trusted from here.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from ..ring.errors import HostKeyError, ServerUnreachableError
from ..ring.transport_sftp import SftpTransport, _known_hosts_name, fingerprint, known_hosts_files
from .setup import SiteSetup


@dataclass(frozen=True)
class HostKeyProbe:
    host: str  # as known_hosts names it: "host" or "[host]:port"
    key_type: str  # "ssh-ed25519"...
    fingerprint: str  # "SHA256:..."
    status: str  # "known" (recorded and equal), "unknown", "changed"
    known_hosts: Path
    key_base64: str  # the exact key shown, recorded on confirmation

    def describe(self) -> str:
        if self.status == "known":
            return f"The server {self.host} is known: {self.key_type} key {self.fingerprint}."
        if self.status == "changed":
            return (
                f"The host key of {self.host} has CHANGED: it now shows {self.key_type} "
                f"{self.fingerprint}, which differs from the one recorded in {self.known_hosts}. "
                "Someone may be impersonating the server; ask its administrator."
            )
        return (
            f"First connection to {self.host}. Its {self.key_type} host key fingerprint is "
            f"{self.fingerprint}. Compare it with the fingerprint the server's administrator "
            "gave you before trusting it."
        )


def probe_host_key(setup: SiteSetup, timeout_s: float = 10.0) -> HostKeyProbe | None:
    """The server's host key and whether known_hosts has it; None for a folder server."""
    loc = setup.location()
    if loc.kind != "sftp":
        return None
    t = SftpTransport(loc, setup.ssh_options())
    host, port, _user, _ids, known = t.resolved_settings()
    known_path, files = known_hosts_files(known)
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except socket.gaierror:
        raise ServerUnreachableError(f"Cannot reach the ring server: host name '{host}' is unknown.") from None
    except OSError as exc:
        raise ServerUnreachableError(f"Cannot reach the ring server {where}: {exc.strerror or exc}.") from None
    tr = paramiko.Transport(sock)
    try:
        tr.banner_timeout = timeout_s
        tr.start_client(timeout=timeout_s)
        key = tr.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ServerUnreachableError(f"The ring server {where} did not complete the SSH greeting: {exc}.") from None
    finally:
        tr.close()
    name = _known_hosts_name(host, port)
    status = "unknown"
    hk = paramiko.HostKeys()
    for path in files:
        try:
            hk.load(str(path))
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise HostKeyError(f"Cannot read the known hosts file {path}: {exc}") from exc
    recorded = hk.lookup(name)
    if recorded is not None and key.get_name() in recorded:  # paramiko's rule: by key type
        status = "known" if recorded[key.get_name()] == key else "changed"
    elif recorded:  # another key type on record: a server switching types is a change, not news
        status = "changed"
    return HostKeyProbe(name, key.get_name(), fingerprint(key), status, known_path, key.get_base64())


def trust_host_key(probe: HostKeyProbe) -> None:
    """Record the key the user confirmed. Refuses a changed key: that needs the
    administrator (and ``ssh-keygen -R``), not a click."""
    if probe.status == "known":
        return
    if probe.status == "changed":
        raise HostKeyError(probe.describe())
    probe.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lead = ""
    if probe.known_hosts.is_file():
        existing = probe.known_hosts.read_bytes()
        lead = "\n" if existing and not existing.endswith(b"\n") else ""
    with open(probe.known_hosts, "a", encoding="ascii") as fh:
        fh.write(f"{lead}{probe.host} {probe.key_type} {probe.key_base64}\n")
