"""A real Orthanc PACS on 127.0.0.1 for the PACS tests (no protocol mocks).

Each server runs ``Orthanc config.json`` as a child process with a throw-away
configuration and storage folder, on free loopback ports: DICOMweb (the
``orthanc-dicomweb`` plugin) behind HTTP basic authentication
(``RegisteredUsers``), DIMSE behind an AE title whitelist (only the AE titles
in ``DicomModalities`` may find, get or store, from 127.0.0.1). With
``tls=True`` both speak TLS with a certificate from a throw-away CA, whose
file the tests give the client: DICOM TLS is Orthanc's own; https is a small
TLS-terminating proxy in front of Orthanc's HTTP port (as a hospital puts
nginx in front of it), because Debian's Orthanc 1.10 crashes on its own
https connections. ``stop()``/``start()``
restart a server on the same ports and storage (the outage tests);
``kill()`` ends it at once.

Fixtures: ``orthanc`` (one server for the whole session) and
``orthanc_factory`` (fresh servers). A missing Orthanc skips with the reason,
unless ``HEMARELAY_REQUIRE_PACS=1`` (set by ``.ci/run``) makes it a failure.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

PLUGIN_CANDIDATES = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so")
USER, PASSWORD = "hemarelay", "s3cret-pacs"
ORTHANC_AET = "ORTHANCTEST"
ALLOWED_AET = "HEMARELAY"


def _require_pacs() -> bool:
    return os.environ.get("HEMARELAY_REQUIRE_PACS", "") not in ("", "0")


def _plugin() -> str | None:
    return next((p for p in PLUGIN_CANDIDATES if Path(p).is_file()), None)


def orthanc_unavailable_reason() -> str | None:
    if not shutil.which("Orthanc"):
        return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb; scripts/setup.sh does it as root)"
    if _plugin() is None:
        return "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost: (ca.pem, cert.pem, key.pem)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = _dt.datetime.now(_dt.timezone.utc)

    def name(cn: str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("hemarelay test CA"))
        .issuer_name(name("hemarelay test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(days=1))
        .not_valid_after(now + _dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(cert.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


class TlsProxy:
    """https on a free loopback port, forwarded to a plain HTTP port (one thread per connection)."""

    def __init__(self, target_port: int, cert: Path, key: Path) -> None:
        import ssl
        import threading

        self.target_port = target_port
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        import ssl
        import threading

        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except (OSError, ssl.SSLError):
            conn.close()
            return

        def pipe(a, b) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pipe, args=(upstream, tls), daemon=True).start()
        pipe(tls, upstream)

    def close(self) -> None:
        self.sock.close()


@dataclass
class OrthancServer:
    folder: Path
    tls: bool = False
    http_port: int = field(default_factory=_free_port)
    dicom_port: int = field(default_factory=_free_port)
    proc: subprocess.Popen | None = None
    ca_file: Path | None = None
    proxy: TlsProxy | None = None

    @property
    def base(self) -> str:
        """Orthanc's own REST API (plain HTTP on loopback: the fixture's side door)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        if self.proxy is not None:
            return f"https://localhost:{self.proxy.port}/dicom-web"
        return f"{self.base}/dicom-web"

    def write_config(self) -> Path:
        cfg = {
            "Name": "hemarelay-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": ORTHANC_AET,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomAlwaysAllowStore": False,
            "DicomCheckModalityHost": True,
            "DicomModalities": {
                "hemarelay": {
                    "AET": ALLOWED_AET,
                    "Host": "127.0.0.1",
                    "Port": 1,  # never called back: retrieval is C-GET
                    "AllowEcho": True,
                    "AllowFind": True,
                    "AllowGet": True,
                    "AllowMove": False,
                    "AllowStore": True,
                }
            },
            "Plugins": [_plugin()],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "StorageCompression": False,
            "HttpTimeout": 10,
            "DicomScpTimeout": 10,
            "StableAge": 1,
            "ConcurrentJobs": 1,
            "HttpThreadsCount": 8,
        }
        if self.tls:
            ca, cert, key = _make_tls(self.folder)
            self.ca_file = ca
            self.proxy = TlsProxy(self.http_port, cert, key)
            cfg.update(
                {
                    "DicomTlsEnabled": True,
                    "DicomTlsCertificate": str(cert),
                    "DicomTlsPrivateKey": str(key),
                    "DicomTlsTrustedCertificates": str(ca),
                    "DicomTlsRemoteCertificateRequired": False,
                }
            )
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(cfg, indent=2))
        return path

    def start(self, timeout_s: float = 30.0) -> "OrthancServer":
        config = self.folder / "orthanc.json"
        if not config.exists():
            self.write_config()
        with open(self.folder / "orthanc.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                ["Orthanc", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start: {self.log_tail()}")
            try:
                if self.rest("GET", "/system").status_code == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"Orthanc did not answer within {timeout_s:g} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return (self.folder / "orthanc.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def rest(self, method: str, path: str, **kw):
        import requests

        return requests.request(
            method,
            self.base + path,
            auth=(USER, PASSWORD),
            timeout=30,
            **kw,
        )

    def upload(self, files) -> list[str]:
        """Store DICOM files (paths or bytes) through the REST API; their Orthanc ids."""
        ids = []
        for f in files:
            data = f if isinstance(f, bytes) else Path(f).read_bytes()
            r = self.rest("POST", "/instances", data=data)
            r.raise_for_status()
            ids.append(r.json()["ID"])
        return ids

    def clear(self) -> None:
        for pid in self.rest("GET", "/patients").json():
            self.rest("DELETE", f"/patients/{pid}")

    def find_instances(self, **tags) -> list[dict]:
        """Instances whose main DICOM tags match (Orthanc's /tools/find), with their tags."""
        r = self.rest("POST", "/tools/find", json={"Level": "Instance", "Query": tags, "Expand": True})
        r.raise_for_status()
        return r.json()

    def instance_file(self, orthanc_id: str) -> bytes:
        r = self.rest("GET", f"/instances/{orthanc_id}/file")
        r.raise_for_status()
        return r.content

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


def _unavailable() -> None:
    reason = orthanc_unavailable_reason()
    if reason:
        if _require_pacs():
            pytest.fail(reason + "; HEMARELAY_REQUIRE_PACS=1 makes this a failure")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def orthanc() -> Iterator[OrthancServer]:
    _unavailable()
    folder = Path(tempfile.mkdtemp(prefix="hemarelay-orthanc-"))
    server = OrthancServer(folder).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def orthanc_factory() -> Iterator:
    _unavailable()
    made: list[OrthancServer] = []
    folders: list[Path] = []

    def make(tls: bool = False) -> OrthancServer:
        folder = Path(tempfile.mkdtemp(prefix="hemarelay-orthanc-"))
        folders.append(folder)
        server = OrthancServer(folder, tls=tls).start()
        made.append(server)
        return server

    yield make
    for s in made:
        s.kill()
        if s.proxy is not None:
            s.proxy.close()
    for f in folders:
        shutil.rmtree(f, ignore_errors=True)
