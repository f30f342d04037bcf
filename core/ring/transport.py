"""Where the ring lives: a server URL and the few file primitives the ring needs.

Every ring operation is built from these primitives, with paths relative to the
ring folder (``/``-separated):

- read a whole file (``iter_read`` yields bytes done, returns the bytes),
- write a whole file atomically: a temp name beside it, then one rename over
  the target (``iter_write_atomic`` yields bytes done), so a reader sees the old
  file or the new one, never a partial one,
- create a file only if it does not exist (``create_exclusive``: O_EXCL, the lock),
- rename (replacing the target), list a folder, stat, delete, make folders.

Two implementations: :class:`~core.ring.transport_dir.DirectoryTransport` (a
folder: local disk or a mounted share) and
:class:`~core.ring.transport_sftp.SftpTransport` (SFTP over SSH, paramiko).
"""

from __future__ import annotations

import re
import stat
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generator, Iterator, Literal
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError
from ..progress import drive
from .errors import ServerFileTooLargeError, UnsafeServerPathError
from .names import safe_rel

TEMP_MARK = ".tmp-"  # temp files are "<target>.tmp-<nonce>": never referenced by the manifest


@dataclass(frozen=True)
class ServerLocation:
    """A parsed ring URL: ``sftp://[user@]host[:port]/path`` or a folder path.

    For SFTP, ``path`` is absolute on the server, or relative to the login
    folder when the URL path starts with ``/~/``.
    """

    kind: Literal["sftp", "dir"]
    path: str
    host: str = ""
    port: int | None = None
    user: str | None = None

    def display(self) -> str:
        if self.kind == "dir":
            return self.path
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        path = self.path if self.path.startswith("/") else f"/~/{self.path}"
        return f"sftp://{user}{self.host}{port}{path}"


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def parse_server_url(text: str) -> ServerLocation:
    """Parse ``--server``: ``sftp://user@host:port/path``, ``file:///path`` or a folder."""
    text = text.strip()
    if not text:
        raise ConfigError("The ring server is empty: give sftp://user@host:port/path or a folder.")
    m = _SCHEME_RE.match(text)
    if not m:
        return ServerLocation("dir", str(Path(text).expanduser().absolute()))
    scheme = m.group(1).lower()
    if scheme == "file":
        return ServerLocation("dir", str(Path(unquote(urlsplit(text).path)).absolute()))
    if scheme != "sftp":
        raise ConfigError(
            f"Ring server '{text}': unsupported scheme '{scheme}://' (use sftp://user@host:port/path or a folder path)."
        )
    parts = urlsplit(text)
    if not parts.hostname:
        raise ConfigError(f"Ring server '{text}': no host name after sftp://.")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"Ring server '{text}': the port is not a number from 1 to 65535.") from None
    path = unquote(parts.path)
    if path in ("", "/", "/~", "/~/"):
        raise ConfigError(
            f"Ring server '{text}': give the ring folder after the host, "
            f"e.g. sftp://{parts.hostname}/srv/ring or sftp://{parts.hostname}/~/ring."
        )
    if path.startswith("/~/"):
        path = path[3:]
    return ServerLocation(
        "sftp",
        path.rstrip("/") or "/",
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else None,
    )


@dataclass(frozen=True)
class FileInfo:
    name: str
    size: int
    mtime: float  # the server's clock: only compare with other server mtimes


@dataclass(frozen=True)
class Entry:
    """One name in a ring folder as it is (lstat): for audits, which must see everything."""

    name: str
    kind: Literal["file", "dir", "link", "other"]
    size: int


def entry_kind(mode: int) -> Literal["file", "dir", "link", "other"]:
    """What an lstat mode says a name is (never following a link)."""
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def temp_name(rel: str) -> str:
    return f"{rel}{TEMP_MARK}{uuid.uuid4().hex[:12]}"


class Transport(ABC):
    """File primitives on the ring folder. Methods raise
    :class:`~core.ring.errors.ServerError` subclasses (transient ones are
    :class:`~core.ring.errors.ServerUnreachableError`), and ``FileNotFoundError``
    where a missing file is an answer rather than a fault."""

    location: ServerLocation
    chunk_bytes: int = 1 << 20

    def describe(self, rel: str = "") -> str:
        base = self.location.display().rstrip("/")
        return f"{base}/{rel}" if rel else base

    def connect(self) -> None:
        """Open the connection now (fail fast with the cause); a no-op for folders."""

    def close(self) -> None:
        """Drop the connection; later calls reconnect."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def iter_read(self, rel: str, max_bytes: int | None = None) -> Generator[int, None, bytes]:
        """Yield bytes read so far; return the content. FileNotFoundError if absent;
        :class:`ServerFileTooLargeError` past ``max_bytes`` (checked before reading)."""

    @abstractmethod
    def _is_link(self, rel: str) -> bool:
        """Whether ``rel`` (relative to the ring folder) is a symbolic link (lstat)."""

    def guard(self, rel: str, last: bool = True) -> str:
        """``rel`` if it is a plain ring path whose folders (and, with ``last``, the
        file itself) are not links: nothing the server plants can lead a site's
        read, write, list or delete outside the ring folder."""
        try:
            safe_rel(rel)
        except ValueError as exc:
            raise UnsafeServerPathError(f"{self.describe()}: {exc}.") from None
        parts = rel.split("/") if rel else []
        upto = parts if last else parts[:-1]
        for n in range(1, len(upto) + 1):
            sub = "/".join(upto[:n])
            if self._is_link(sub):
                raise UnsafeServerPathError(
                    f"{self.describe(sub)} is a symbolic link; a ring folder holds only plain files and "
                    "folders, so this site refuses to follow it (someone with write access to the ring "
                    "may be trying to make sites read or delete files elsewhere)."
                )
        return rel

    def too_large(self, rel: str, size: int, max_bytes: int) -> ServerFileTooLargeError:
        return ServerFileTooLargeError(
            f"{self.describe(rel)} is {size / 1e6:.1f} MB, more than the {max_bytes / 1e6:.1f} MB this "
            "site accepts for it; refused without reading it."
        )

    def read_blocks(
        self, rel: str, size: int, read_block: Callable[[int], bytes], max_bytes: int | None
    ) -> Generator[int, None, bytes]:
        """The one chunked read of both transports: refuse a file whose ``size`` is over
        ``max_bytes`` before reading, then call ``read_block(chunk_bytes)`` until it returns
        nothing, yielding bytes read (and refusing a file that grows past ``max_bytes``)."""
        if max_bytes is not None and size > max_bytes:
            raise self.too_large(rel, size, max_bytes)
        chunks: list[bytes] = []
        done = 0
        while True:
            block = read_block(self.chunk_bytes)
            if not block:
                return b"".join(chunks)
            chunks.append(block)
            done += len(block)
            if max_bytes is not None and done > max_bytes:  # grew while being read
                raise self.too_large(rel, done, max_bytes)
            yield done

    @abstractmethod
    def iter_write_atomic(self, rel: str, data: bytes) -> Iterator[int]:
        """Write to a temp name, then rename over ``rel``; yield bytes written."""

    @abstractmethod
    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` with ``data`` unless it exists (then return False).
        A reader may briefly see it empty or partial."""

    @abstractmethod
    def rename(self, src: str, dst: str) -> None:
        """Atomic rename replacing ``dst``. FileNotFoundError when ``src`` is absent."""

    @abstractmethod
    def list_dir(self, rel: str) -> list[FileInfo]:
        """Plain files of a folder ([] when the folder does not exist)."""

    @abstractmethod
    def list_entries(self, rel: str) -> list[Entry]:
        """Every name in a folder, links and folders included, never followed."""

    @abstractmethod
    def stat(self, rel: str) -> FileInfo | None:
        """Size and mtime, None when absent."""

    @abstractmethod
    def delete(self, rel: str) -> None:
        """Remove a file; absent is fine."""

    @abstractmethod
    def makedirs(self, rel: str) -> None:
        """Create a folder and its parents ("" is the ring folder itself)."""

    def read_bytes(self, rel: str, max_bytes: int | None = None) -> bytes:
        return drive(self.iter_read(rel, max_bytes))

    def write_atomic(self, rel: str, data: bytes) -> None:
        drive(self.iter_write_atomic(rel, data))
