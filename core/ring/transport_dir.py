"""The ring in a plain folder: local disk (a ring on one machine) or a mounted share.

Every operation walks to its folder one name at a time from the ring folder, each
opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to the one before (``openat``),
and then acts on the file relative to that folder: a folder swapped for a link
after :meth:`Transport.guard` looked at it is refused by the system itself, not
followed (no check-then-open race).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mod
from pathlib import Path
from typing import Generator, Iterator

from .errors import ServerError, ServerPermissionError, UnsafeServerPathError
from .transport import Entry, FileInfo, ServerLocation, Transport, entry_kind, temp_name

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class DirectoryTransport(Transport):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = ServerLocation("dir", str(self.root))

    def _p(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def _fail(self, exc: OSError, verb: str, rel: str) -> ServerError:
        where = self.describe(rel)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return UnsafeServerPathError(
                f"{where}: a folder on its way is a symbolic link (or not a folder); this site refuses to "
                "follow it (someone with write access to the ring may be trying to make sites read or "
                "delete files elsewhere)."
            )
        if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return ServerPermissionError(
                f"Permission denied: cannot {verb} {where} (this account needs read and "
                f"write access to the ring folder)."
            )
        return ServerError(f"Cannot {verb} {where}: {exc.strerror or exc}.")

    def _is_link(self, rel: str) -> bool:
        return self._p(rel).is_symlink()

    @contextlib.contextmanager
    def _folder(self, parts: list[str], create: bool = False) -> Iterator[int]:
        """A descriptor of the folder ``parts`` below the ring folder, each step opened
        without following links (and made first, with ``create``)."""
        fd = os.open(self.root, os.O_RDONLY | _DIRECTORY)
        try:
            for part in parts:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                sub = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = sub
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _split(rel: str) -> tuple[list[str], str]:
        parts = rel.split("/")
        return parts[:-1], parts[-1]

    def iter_read(self, rel: str, max_bytes: int | None = None) -> Generator[int, None, bytes]:
        self.guard(rel)
        folders, name = self._split(rel)
        try:
            with self._folder(folders) as dir_fd:
                # O_NOFOLLOW: a link planted between the check and the open is refused too.
                fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=dir_fd)
            with open(fd, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not stat_mod.S_ISREG(st.st_mode):
                    raise UnsafeServerPathError(f"{self.describe(rel)} is not a plain file; refused.")
                return (yield from self.read_blocks(rel, st.st_size, fh.read, max_bytes))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self._fail(exc, "read", rel) from exc

    def iter_write_atomic(self, rel: str, data: bytes) -> Iterator[int]:
        self.guard(rel, last=False)  # the rename replaces a link at ``rel`` itself, never follows it
        folders, name = self._split(rel)
        tmp = Path(temp_name(rel)).name
        try:
            with self._folder(folders) as dir_fd:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644, dir_fd=dir_fd)
                try:
                    with open(fd, "wb") as fh:
                        view = memoryview(data)
                        for start in range(0, len(data), self.chunk_bytes):
                            fh.write(view[start : start + self.chunk_bytes])
                            yield min(start + self.chunk_bytes, len(data))
                        fh.flush()
                        os.fsync(fh.fileno())  # the rename must not publish unwritten blocks
                    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=dir_fd)
                    raise
        except OSError as exc:
            raise self._fail(exc, "write", rel) from exc
        if not data:
            yield 0

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        self.guard(rel, last=False)  # O_EXCL never follows a link at ``rel``
        folders, name = self._split(rel)
        try:
            with self._folder(folders) as dir_fd:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644, dir_fd=dir_fd)
        except FileExistsError:
            return False
        except OSError as exc:
            raise self._fail(exc, "create", rel) from exc
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def rename(self, src: str, dst: str) -> None:
        self.guard(src, last=False)
        self.guard(dst, last=False)
        (src_folders, src_name), (dst_folders, dst_name) = self._split(src), self._split(dst)
        try:
            with self._folder(src_folders) as src_fd, self._folder(dst_folders) as dst_fd:
                os.replace(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self._fail(exc, "rename", src) from exc

    def _scan(self, rel: str, verb: str) -> list[tuple[os.DirEntry, os.stat_result]]:
        self.guard(rel)  # a linked folder would list (and let prune delete) files elsewhere
        try:
            with self._folder(rel.split("/") if rel else []) as fd:
                with os.scandir(fd) as it:
                    return [(e, e.stat(follow_symlinks=False)) for e in it]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._fail(exc, verb, rel) from exc

    def list_dir(self, rel: str) -> list[FileInfo]:
        out = [
            FileInfo(e.name, st.st_size, st.st_mtime)
            for e, st in self._scan(rel, "list")
            if stat_mod.S_ISREG(st.st_mode)
        ]
        return sorted(out, key=lambda f: f.name)

    def list_entries(self, rel: str) -> list[Entry]:
        out = [Entry(e.name, entry_kind(st.st_mode), st.st_size) for e, st in self._scan(rel, "list")]
        return sorted(out, key=lambda f: f.name)

    def stat(self, rel: str) -> FileInfo | None:
        self.guard(rel, last=False)
        folders, name = self._split(rel)
        try:
            with self._folder(folders) as dir_fd:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail(exc, "read", rel) from exc
        return FileInfo(name, st.st_size, st.st_mtime)

    def delete(self, rel: str) -> None:
        self.guard(rel, last=False)  # unlink removes a link itself, never its target
        folders, name = self._split(rel)
        try:
            with self._folder(folders) as dir_fd:
                os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._fail(exc, "delete", rel) from exc

    def makedirs(self, rel: str) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail(exc, "create", "") from exc
        if not rel:
            return
        self.guard(rel)
        try:
            with self._folder(rel.split("/"), create=True):
                pass
        except OSError as exc:
            raise self._fail(exc, "create", rel) from exc
