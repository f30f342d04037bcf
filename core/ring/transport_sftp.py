"""The ring on an SSH server, over SFTP (paramiko).

Security: key authentication only (an explicit key file, else the keys
``~/.ssh/config`` names, the agent and the default ``~/.ssh/id_*``); the server's
host key must match known_hosts. An unknown key is refused with its SHA256
fingerprint unless the user passes ``trust_host_key`` (``--trust-host-key``), which
records it in known_hosts; a changed key is always refused (the user removes the
old line first, as with OpenSSH). ``~/.ssh/config`` host aliases are honoured
(HostName, Port, User, IdentityFile, UserKnownHostsFile); ProxyCommand/ProxyJump
are not.

The connection opens lazily and is re-opened after a drop: a dropped
connection raises :class:`ConnectionLostError`, which a turn retries.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import logging
import posixpath
import socket
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generator, Iterator, TypeVar

import paramiko

from .errors import (
    ConnectionLostError,
    HostKeyError,
    ServerAuthError,
    ServerError,
    ServerPermissionError,
    ServerUnreachableError,
    UnsafeServerPathError,
)
from .transport import Entry, FileInfo, ServerLocation, Transport, entry_kind, temp_name

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class SshOptions:
    identity: Path | None = None  # private key file; None: ssh config, agent, ~/.ssh/id_*
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts (+ /etc/ssh/ssh_known_hosts)
    trust_host_key: bool = False  # accept an unknown host key and record it in known_hosts
    ssh_config: Path | None = None  # None: ~/.ssh/config when it exists
    connect_timeout_s: float = 15.0
    io_timeout_s: float = 60.0  # a silent server after this long counts as a dropped connection
    passphrase: str | None = None  # of a passphrase-protected identity (else ssh-agent)


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def check_private_key_mode(path: Path) -> None:
    """Refuse a private key file other users can read, as ssh does."""
    import os
    import stat

    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ServerAuthError(
            f"The SSH key file {path} can be read by other users (mode "
            f"{stat.S_IMODE(mode):04o}); restrict it with: chmod 600 {path}"
        )


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_files(known: Path | None) -> tuple[Path, list[Path]]:
    """(the file new host keys are recorded in, the files checked): ``known`` alone when
    given, else ~/.ssh/known_hosts and the system's /etc/ssh/ssh_known_hosts."""
    record_to = known or Path("~/.ssh/known_hosts").expanduser()
    system = [] if known is not None else [Path("/etc/ssh/ssh_known_hosts")]
    return record_to, [p for p in system + [record_to] if p.is_file()]


def host_key_type_switch(
    host: str, key: paramiko.PKey, recorded: "paramiko.hostkeys.SubDict", known_hosts: Path
) -> str:
    types = ", ".join(sorted(recorded.keys()))
    return (
        f"The host key of the ring server {host} has CHANGED: {known_hosts} records a {types} key, "
        f"the server now shows {key.get_name()} {fingerprint(key)}. Someone may be impersonating the "
        f"server; ask its administrator before removing the old entry (ssh-keygen -R)."
    )


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown host keys, or record them when the user said to trust."""

    def __init__(self, trust: bool, record_to: Path, port: int) -> None:
        self.trust, self.record_to, self.port = trust, record_to, port

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        fp = fingerprint(key)
        recorded = client.get_host_keys().lookup(hostname) or client._system_host_keys.lookup(hostname)
        if recorded:  # a key of another type is on record: a switch is a change, not a first contact
            raise HostKeyError(host_key_type_switch(hostname, key, recorded, self.record_to))
        if not self.trust:
            raise HostKeyError(
                f"The ring server {hostname} is not in {self.record_to}: its {key.get_name()} host "
                f"key is {fp}. Check that fingerprint with the server's administrator, then run "
                f"again with --trust-host-key to record it."
            )
        # ``hostname`` is already "[host]:port" for ports other than 22 (paramiko's convention).
        self.record_to.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.record_to, "a", encoding="ascii") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning("trusted and recorded the host key %s of %s in %s", fp, hostname, self.record_to)


def _check_identities(identities: list[str]) -> None:
    """Each key file named for the login exists and is private to its owner."""
    for ident in identities:
        if not Path(ident).is_file():
            raise ServerAuthError(f"The SSH key file {ident} does not exist.")
        check_private_key_mode(Path(ident))


class SftpTransport(Transport):
    def __init__(self, location: ServerLocation, options: SshOptions) -> None:
        self.location = location
        self.options = options
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._root: str | None = None
        self._real_root: str | None = None  # the ring folder as the server resolves it

    # -- connection ---------------------------------------------------------

    def _ssh_settings(self) -> tuple[str, int, str, list[str], Path | None]:
        """hostname, port, user, identity files, known_hosts from the URL and ~/.ssh/config."""
        loc, opts = self.location, self.options
        cfg_path = opts.ssh_config or Path("~/.ssh/config").expanduser()
        cfg: dict = {}
        if cfg_path.is_file():
            try:
                cfg = paramiko.SSHConfig.from_path(str(cfg_path)).lookup(loc.host)
            except (OSError, paramiko.SSHException, ValueError) as exc:
                raise ServerError(f"Cannot read the SSH config {cfg_path}: {exc}") from exc
            if "proxycommand" in cfg or "proxyjump" in cfg:
                log.warning(
                    "%s: ProxyCommand/ProxyJump for %s are not supported; connecting directly", cfg_path, loc.host
                )
        host = cfg.get("hostname", loc.host)
        port = loc.port or int(cfg.get("port", 22))
        user = loc.user or cfg.get("user") or getpass.getuser()
        if opts.identity is not None:
            identities = [str(Path(opts.identity).expanduser())]
        else:
            identities = [
                str(Path(p).expanduser()) for p in cfg.get("identityfile", []) if Path(p).expanduser().is_file()
            ]
        known = opts.known_hosts
        if known is None and cfg.get("userknownhostsfile"):
            known = Path(cfg["userknownhostsfile"].split()[0]).expanduser()
        return host, port, user, identities, known

    def resolved_settings(self) -> tuple[str, int, str, list[str], Path | None]:
        """hostname, port, user, identity files, known_hosts after ~/.ssh/config."""
        return self._ssh_settings()

    def _ssh_client(self, known: Path | None, port: int) -> tuple[paramiko.SSHClient, Path]:
        """An SSH client that knows the recorded host keys; with the known_hosts file it records to."""
        client = paramiko.SSHClient()
        record_to, files = known_hosts_files(known)
        try:
            for path in files:  # the recorded file last: paramiko writes back only that one
                if path == record_to:
                    client.load_host_keys(str(path))
                else:
                    client.load_system_host_keys(str(path))
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise HostKeyError(f"Cannot read the known hosts file {record_to}: {exc}") from exc
        client.set_missing_host_key_policy(_HostKeyPolicy(self.options.trust_host_key, record_to, port))
        return client, record_to

    def connect(self) -> None:
        if self._sftp is not None:
            return
        host, port, user, identities, known = self._ssh_settings()
        where = f"{host}:{port}"
        client, record_to = self._ssh_client(known, port)
        _check_identities(identities)
        timeout = self.options.connect_timeout_s
        try:
            client.connect(
                host,
                port=port,
                username=user,
                key_filename=identities or None,
                look_for_keys=not identities,
                allow_agent=not identities,
                passphrase=self.options.passphrase,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
            )
            sftp = client.open_sftp()
        except HostKeyError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(
                f"The host key of the ring server {where} has CHANGED: known_hosts ({record_to}) "
                f"has {fingerprint(exc.expected_key)}, the server shows {fingerprint(exc.key)}. "
                f"Someone may be impersonating the server; if it was reinstalled, remove the old "
                f"entry (ssh-keygen -R '{_known_hosts_name(host, port)}' -f {record_to}) and run "
                f"again with --trust-host-key."
            ) from None
        except paramiko.PasswordRequiredException:
            client.close()
            raise ServerAuthError(
                f"The SSH key {', '.join(identities) or '(default)'} is protected by a passphrase: "
                f"give it (HEMARELAY_KEY_PASSPHRASE or the prompt) or load the key into ssh-agent."
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            keys = ", ".join(identities) if identities else "the default keys and ssh-agent"
            raise ServerAuthError(
                f"The ring server {where} refused the login of user '{user}' with {keys}: "
                f"ask its administrator to add the public key to authorized_keys."
            ) from None
        except socket.gaierror:
            client.close()
            raise ServerUnreachableError(f"Cannot reach the ring server: host name '{host}' is unknown.") from None
        except paramiko.ssh_exception.NoValidConnectionsError:
            client.close()
            raise ServerUnreachableError(
                f"Cannot reach the ring server {where}: connection refused (is the SSH server running on that port?)."
            ) from None
        except (socket.timeout, TimeoutError):
            client.close()
            raise ServerUnreachableError(
                f"Cannot reach the ring server {where}: no answer within {timeout:g} s."
            ) from None
        except paramiko.SSHException as exc:
            client.close()
            raise ServerUnreachableError(f"The ring server {where} closed the SSH connection: {exc}.") from None
        except (OSError, EOFError) as exc:
            client.close()
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ServerUnreachableError(f"Cannot reach the ring server {where}: {reason}.") from None
        sftp.get_channel().settimeout(self.options.io_timeout_s)
        self._client, self._sftp = client, sftp
        path = self.location.path
        try:
            self._root = path if path.startswith("/") else sftp.normalize(".") + "/" + path
        except OSError:
            self._root = path

    def close(self) -> None:
        client, self._client, self._sftp, self._real_root = self._client, None, None, None
        if client is not None:
            client.close()

    def _alive(self) -> bool:
        if self._client is None or self._sftp is None:
            return False
        t = self._client.get_transport()
        return t is not None and t.is_active() and not self._sftp.get_channel().closed

    def _answers(self) -> bool:
        """After a failed request: does the server still answer? (A server killed
        mid-transfer can fail the request before paramiko marks the transport dead.)"""
        try:
            assert self._sftp is not None
            self._sftp.normalize(".")
            return True
        except Exception:  # noqa: BLE001 - any failure here means the connection is gone
            return False

    def _call(self, verb: str, rel: str, fn: Callable[[paramiko.SFTPClient], T]) -> T:
        self.connect()
        assert self._sftp is not None
        try:
            return fn(self._sftp)
        except FileNotFoundError:
            raise
        except PermissionError:
            raise ServerPermissionError(
                f"Permission denied: cannot {verb} {self.describe(rel)} (the server account "
                f"needs read and write access to the ring folder)."
            ) from None
        except (socket.timeout, TimeoutError):
            self.close()  # a server silent for io_timeout_s: treat as a dropped connection
            raise ConnectionLostError(
                f"The ring server {self.describe()} did not answer within "
                f"{self.options.io_timeout_s:g} s while trying to {verb} "
                f"{rel or 'the folder'}."
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if not self._alive() or not self._answers():
                self.close()
                raise ConnectionLostError(
                    f"The connection to the ring server {self.describe()} "
                    f"dropped while trying to {verb} {rel or 'the folder'}."
                ) from None
            raise ServerError(
                f"The ring server failed to {verb} {self.describe(rel)}: {str(exc) or type(exc).__name__}."
            ) from exc

    def _path(self, rel: str) -> str:
        assert self._root is not None
        return posixpath.join(self._root, rel) if rel else self._root

    # -- primitives ---------------------------------------------------------

    def _is_link(self, rel: str) -> bool:
        try:
            a = self._call("read", rel, lambda s: s.lstat(self._path(rel)))
        except FileNotFoundError:
            return False
        return a.st_mode is not None and stat_mod.S_ISLNK(a.st_mode)

    def _still_inside(self, rel: str) -> None:
        """After an operation: the server's own resolution of ``rel``'s folder (realpath,
        which follows links) must still be that folder inside the ring folder. SFTP has
        no O_NOFOLLOW and no openat, so a folder swapped for a link between the lstat of
        :meth:`guard` and the operation cannot be refused by the server; this check finds
        it one round trip later, and what was read is then discarded."""
        folder = posixpath.dirname(rel)
        try:
            if self._real_root is None:
                self._real_root = self._call("read", "", lambda s: s.normalize(self._path("")))
            root = self._real_root
            real = self._call("read", folder, lambda s: s.normalize(self._path(folder))) if folder else root
        except FileNotFoundError:
            return
        expected = posixpath.join(root, folder) if folder else root
        if real != expected:
            raise UnsafeServerPathError(
                f"{self.describe(folder)} resolves to another folder on the server (a folder was "
                "replaced by a link while this site used it); what was read is discarded."
            )

    def iter_read(self, rel: str, max_bytes: int | None = None) -> Generator[int, None, bytes]:
        self.connect()
        self.guard(rel)  # SFTP has no O_NOFOLLOW: lstat first, fstat the opened file, realpath after
        fh = self._call("read", rel, lambda s: s.open(self._path(rel), "rb"))
        try:
            st = self._call("read", rel, lambda s: fh.stat())
            if st.st_mode is not None and not stat_mod.S_ISREG(st.st_mode):
                raise UnsafeServerPathError(f"{self.describe(rel)} is not a plain file; refused.")
            size = st.st_size or 0
            if size and (max_bytes is None or size <= max_bytes):
                fh.prefetch(size)

            def read_block(n: int) -> bytes:
                return self._call("read", rel, lambda s: fh.read(n))

            data = yield from self.read_blocks(rel, size, read_block, max_bytes)
            self._still_inside(rel)
            return data
        finally:
            try:
                fh.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass

    def iter_write_atomic(self, rel: str, data: bytes) -> Iterator[int]:
        self.guard(rel, last=False)
        tmp = temp_name(rel)
        fh = self._call("write", tmp, lambda s: s.open(self._path(tmp), "wb"))
        try:
            fh.set_pipelined(True)
            view = memoryview(data)
            for start in range(0, len(data), self.chunk_bytes):
                block = bytes(view[start : start + self.chunk_bytes])
                self._call("write", tmp, lambda s: fh.write(block))
                yield min(start + self.chunk_bytes, len(data))
            self._call("write", tmp, lambda s: fh.close())  # waits for every pipelined ack
            # posix-rename@openssh.com replaces the target atomically (plain SFTP rename refuses).
            self._call("write", rel, lambda s: s.posix_rename(self._path(tmp), self._path(rel)))
        except BaseException:
            if self._alive():
                try:
                    fh.close()
                    self._sftp.remove(self._path(tmp))  # type: ignore[union-attr]
                except (OSError, EOFError, paramiko.SSHException):
                    pass
            raise
        if not data:
            yield 0

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        self.guard(rel, last=False)

        def op(s: paramiko.SFTPClient) -> bool:
            try:
                fh = s.open(self._path(rel), "wbx")  # SSH_FXF_EXCL: O_EXCL on the server
            except OSError as exc:
                if isinstance(exc, PermissionError) or not self._alive():
                    raise
                try:  # the SFTP status for "exists" is a bare "Failure": check
                    s.stat(self._path(rel))
                except FileNotFoundError:
                    raise exc from None
                return False
            with fh:
                fh.write(data)
            return True

        return self._call("create", rel, op)

    def rename(self, src: str, dst: str) -> None:
        self.guard(src, last=False)
        self.guard(dst, last=False)
        self._call("rename", src, lambda s: s.posix_rename(self._path(src), self._path(dst)))

    def list_dir(self, rel: str) -> list[FileInfo]:
        self.guard(rel)  # a linked folder would list (and let prune delete) the account's own files
        try:
            attrs = self._call("list", rel, lambda s: s.listdir_attr(self._path(rel)))
            self._still_inside(f"{rel}/." if rel else ".")
        except FileNotFoundError:
            return []
        return sorted(
            (
                FileInfo(a.filename, a.st_size or 0, float(a.st_mtime or 0))
                for a in attrs
                if a.st_mode is not None and stat_mod.S_ISREG(a.st_mode)
            ),
            key=lambda f: f.name,
        )

    def list_entries(self, rel: str) -> list[Entry]:
        self.guard(rel)
        try:
            attrs = self._call("list", rel, lambda s: s.listdir_attr(self._path(rel)))
        except FileNotFoundError:
            return []
        # readdir attributes are lstat's: links are seen as links
        out = [Entry(a.filename, entry_kind(a.st_mode or 0), a.st_size or 0) for a in attrs]
        return sorted(out, key=lambda f: f.name)

    def stat(self, rel: str) -> FileInfo | None:
        self.guard(rel, last=False)
        try:
            a = self._call("read", rel, lambda s: s.lstat(self._path(rel)))
        except FileNotFoundError:
            return None
        return FileInfo(posixpath.basename(rel), a.st_size or 0, float(a.st_mtime or 0))

    def delete(self, rel: str) -> None:
        self.guard(rel, last=False)
        self._still_inside(rel)  # a second look just before (SFTP cannot refuse a link itself)
        try:
            self._call("delete", rel, lambda s: s.remove(self._path(rel)))
        except FileNotFoundError:
            pass

    def makedirs(self, rel: str) -> None:
        self.connect()
        if rel:
            self.guard(rel)
        target = self._path(rel)
        parts = [p for p in target.split("/") if p]
        current = "/" if target.startswith("/") else ""
        for part in parts:
            current = posixpath.join(current, part) if current else part
            path = current
            try:
                st = self._call("create", rel, lambda s: s.stat(path))
            except FileNotFoundError:
                try:
                    self._call("create", rel, lambda s: s.mkdir(path))
                except ServerError:
                    if self.stat_abs(path) is None:  # not a race with another creator
                        raise
                continue
            if not stat_mod.S_ISDIR(st.st_mode or 0):
                raise ServerError(f"{self.describe(rel)}: '{path}' on the server is a file, not a folder.")

    def stat_abs(self, path: str) -> paramiko.SFTPAttributes | None:
        try:
            return self._call("read", path, lambda s: s.stat(path))
        except FileNotFoundError:
            return None
