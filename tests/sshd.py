"""A real OpenSSH sshd on 127.0.0.1 for the ring's SFTP tests (no transport mocks).

The server runs as root in the foreground (``sshd -D -e``) with a throw-away
config: an ed25519 host key and one client key generated in a temp directory,
public-key login only, ``internal-sftp``. Tests get an :class:`SshdServer`
with the host, port, user, client key and a known_hosts file that already
trusts the host key; ``stop()``/``start()`` kill and restart it on the same port
(with the same host key) for the outage tests.

Run ``python tests/sshd.py`` to keep one running for a manual two-site demo.

Fixtures: ``sshd`` (one server for the whole session) and ``sshd_factory``
(fresh servers, e.g. a read-only SFTP server for the permission test). When
sshd is not installed or we are not root they skip with the reason, unless
``HEMARELAY_REQUIRE_SSHD=1`` (set by ``.ci/run``), which makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def _require_sshd() -> bool:
    return os.environ.get("HEMARELAY_REQUIRE_SSHD", "") not in ("", "0")


def sshd_unavailable_reason() -> str | None:
    """Why a real sshd cannot run here, or None when it can."""
    if not any(Path(p).is_file() for p in SSHD_CANDIDATES) and not shutil.which("sshd"):
        return "OpenSSH server not installed (apt-get install openssh-server)"
    if not shutil.which("ssh-keygen"):
        return "ssh-keygen not found (apt-get install openssh-client)"
    if os.geteuid() != 0:
        return "the test sshd must run as root (it logs in as root with a temp key)"
    return None


def _sshd_binary() -> str:
    for p in SSHD_CANDIDATES:
        if Path(p).is_file():
            return p
    found = shutil.which("sshd")
    assert found
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hemarelay-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def _die_with_parent() -> None:
    """In the sshd child: get SIGKILL if the test process dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _descendants(pid: int) -> list[int]:
    """Child processes (recursively) from /proc: sshd's per-connection children
    call setsid(), so killing the listener's process group would miss them."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@dataclass
class SshdServer:
    """One running sshd; ``url(path)`` gives the ring URL for a server folder."""

    workdir: Path
    port: int
    read_only: bool = False
    host: str = "127.0.0.1"
    user: str = "root"
    client_key: Path = field(init=False)
    other_key: Path = field(init=False)  # a valid key the server does not accept
    known_hosts: Path = field(init=False)  # trusts exactly this server's host key
    host_key_line: str = field(init=False)
    log_path: Path = field(init=False)
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        d = self.workdir
        host_pub = _keygen(d / "ssh_host_ed25519_key")
        client_pub = _keygen(d / "client_ed25519")
        _keygen(d / "other_ed25519")
        self.client_key = d / "client_ed25519"
        self.other_key = d / "other_ed25519"
        (d / "authorized_keys").write_text(client_pub + "\n")
        key_type, key_b64 = host_pub.split()[:2]
        self.host_key_line = f"[{self.host}]:{self.port} {key_type} {key_b64}"
        self.known_hosts = d / "known_hosts"
        self.known_hosts.write_text(self.host_key_line + "\n")
        self.log_path = d / "sshd.log"
        sftp = "internal-sftp -R" if self.read_only else "internal-sftp"
        (d / "sshd_config").write_text(
            f"Port {self.port}\n"
            f"ListenAddress {self.host}\n"
            f"HostKey {d / 'ssh_host_ed25519_key'}\n"
            f"PidFile {d / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "MaxStartups 100\n"
            "MaxSessions 50\n"
            "LogLevel INFO\n"
            f"Subsystem sftp {sftp}\n"
        )

    def url(self, path: Path | str) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}{Path(path).resolve()}"

    def start(self, timeout_s: float = 10.0) -> None:
        assert self._proc is None, "sshd already running"
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [_sshd_binary(), "-D", "-e", "-f", str(self.workdir / "sshd_config")],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"sshd exited at start-up: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sshd did not answer on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        """Kill the listener and every open session (an abrupt server outage)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pid in _descendants(proc.pid) + [proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


class SshdFactory:
    def __init__(self) -> None:
        self._servers: list[SshdServer] = []
        self._dirs: list[str] = []

    def __call__(self, read_only: bool = False) -> SshdServer:
        reason = sshd_unavailable_reason()
        if reason:
            if _require_sshd():
                pytest.fail(reason + "; HEMARELAY_REQUIRE_SSHD=1 makes this a failure")
            pytest.skip(reason)
        workdir = tempfile.mkdtemp(prefix="hemarelay-sshd-")
        self._dirs.append(workdir)
        last: Exception | None = None
        for _ in range(3):  # a free port can be taken between probe and bind
            server = SshdServer(Path(workdir), _free_port(), read_only=read_only)
            try:
                server.start()
            except RuntimeError as exc:
                last = exc
                for p in Path(workdir).iterdir():
                    p.unlink()
                continue
            self._servers.append(server)
            return server
        raise RuntimeError(f"could not start sshd: {last}")

    def close(self) -> None:
        for s in self._servers:
            s.stop()
        for d in self._dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def _sshd_session_factory() -> Iterator[SshdFactory]:
    factory = SshdFactory()
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def sshd(_sshd_session_factory: SshdFactory) -> SshdServer:
    """One loopback sshd shared by the session's tests."""
    return _sshd_session_factory()


@pytest.fixture
def sshd_factory() -> Iterator[SshdFactory]:
    """Fresh sshd servers owned by one test (stopped afterwards)."""
    factory = SshdFactory()
    yield factory
    factory.close()


if __name__ == "__main__":  # a loopback sshd for trying the ring by hand
    reason = sshd_unavailable_reason()
    if reason:
        raise SystemExit(reason)
    factory = SshdFactory()
    server = factory()
    flags = f"--identity {server.client_key} --known-hosts {server.known_hosts}"
    print(
        f"sshd listening on {server.host}:{server.port}; stop with Ctrl-C. For example:\n"
        f"  hemarelay ring init --server {server.url('/tmp/hemarelay-ring')} --sites a,b {flags}\n"
        f"  hemarelay ring turn --server {server.url('/tmp/hemarelay-ring')} --site a --data DIR --wait {flags}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while server.running:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        factory.close()
