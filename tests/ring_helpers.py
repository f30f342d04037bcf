"""What the ring tests share: fast retry settings and an SFTP transport to the test sshd."""

from __future__ import annotations

from pathlib import Path

from core.ring.transport import parse_server_url
from core.ring.transport_sftp import SftpTransport, SshOptions
from sshd import SshdServer

# Poll, back off and give up quickly: the tests' servers are local.
FAST = dict(poll_s=0.02, backoff_s=0.02, backoff_max_s=0.1, retry_for_s=5.0, obsolete_grace_s=0.1)
FAST_SFTP = dict(FAST, poll_s=0.05, backoff_s=0.05, backoff_max_s=0.2, retry_for_s=20.0)


def sftp(server: SshdServer, path: Path, **kw) -> SftpTransport:
    """The ring folder ``path`` on the test sshd, with its client key and known_hosts."""
    opts = dict(identity=server.client_key, known_hosts=server.known_hosts, connect_timeout_s=5.0)
    opts.update(kw)
    return SftpTransport(parse_server_url(server.url(path)), SshOptions(**opts))
