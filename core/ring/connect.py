"""Opening a ring server: the one place that picks the transport for a URL.

It sits apart from :mod:`.transport` because it names both implementations,
which themselves build on :mod:`.transport`; paramiko is imported only when an
SFTP ring is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .transport import ServerLocation, Transport, parse_server_url
from .transport_dir import DirectoryTransport

if TYPE_CHECKING:
    from .transport_sftp import SshOptions


def open_transport(location: ServerLocation | str, ssh: "SshOptions | None" = None) -> Transport:
    """A transport for a URL or parsed location; SFTP connects lazily (call ``connect()``)."""
    if isinstance(location, str):
        location = parse_server_url(location)
    if location.kind == "dir":
        return DirectoryTransport(Path(location.path))
    from .transport_sftp import SftpTransport, SshOptions  # paramiko only for an SFTP ring

    return SftpTransport(location, ssh or SshOptions())
