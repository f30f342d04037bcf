"""The ring in a plain folder: local disk (a ring on one machine) or a mounted share."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Generator, Iterator

from .errors import ServerError, ServerPermissionError
from .transport import Entry, FileInfo, ServerLocation, Transport, temp_name


class DirectoryTransport(Transport):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = ServerLocation("dir", str(self.root))

    def _p(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def _fail(self, exc: OSError, verb: str, rel: str) -> ServerError:
        where = self.describe(rel)
        if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return ServerPermissionError(
                f"Permission denied: cannot {verb} {where} (this account needs read and "
                f"write access to the ring folder)."
            )
        return ServerError(f"Cannot {verb} {where}: {exc.strerror or exc}.")

    def _is_link(self, rel: str) -> bool:
        return self._p(rel).is_symlink()

    def iter_read(self, rel: str, max_bytes: int | None = None) -> Generator[int, None, bytes]:
        self.guard(rel)
        try:
            # O_NOFOLLOW: a link planted between the check and the open is refused too.
            fd = os.open(self._p(rel), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with open(fd, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                return (yield from self.read_blocks(rel, size, fh.read, max_bytes))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self._fail(exc, "read", rel) from exc

    def iter_write_atomic(self, rel: str, data: bytes) -> Iterator[int]:
        self.guard(rel, last=False)  # the rename replaces a link at ``rel`` itself, never follows it
        target = self._p(rel)
        tmp = target.with_name(Path(temp_name(rel)).name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with open(fd, "wb") as fh:
                view = memoryview(data)
                for start in range(0, len(data), self.chunk_bytes):
                    fh.write(view[start : start + self.chunk_bytes])
                    yield min(start + self.chunk_bytes, len(data))
                fh.flush()
                os.fsync(fh.fileno())  # the rename must not publish unwritten blocks
            os.replace(tmp, target)
        except BaseException as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise self._fail(exc, "write", rel) from exc
            raise
        if not data:
            yield 0

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        self.guard(rel, last=False)  # O_EXCL never follows a link at ``rel``
        try:
            fd = os.open(self._p(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
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
        try:
            os.replace(self._p(src), self._p(dst))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self._fail(exc, "rename", src) from exc

    def list_dir(self, rel: str) -> list[FileInfo]:
        self.guard(rel)  # a linked folder would list (and let prune delete) files elsewhere
        out = []
        try:
            with os.scandir(self._p(rel)) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        out.append(FileInfo(e.name, st.st_size, st.st_mtime))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._fail(exc, "list", rel) from exc
        return sorted(out, key=lambda f: f.name)

    def list_entries(self, rel: str) -> list[Entry]:
        self.guard(rel)
        out = []
        try:
            with os.scandir(self._p(rel)) as it:
                for e in it:
                    st = e.stat(follow_symlinks=False)
                    kind = (
                        "link"
                        if e.is_symlink()
                        else "dir"
                        if e.is_dir(follow_symlinks=False)
                        else "file"
                        if e.is_file(follow_symlinks=False)
                        else "other"
                    )
                    out.append(Entry(e.name, kind, st.st_size))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._fail(exc, "list", rel) from exc
        return sorted(out, key=lambda f: f.name)

    def stat(self, rel: str) -> FileInfo | None:
        self.guard(rel, last=False)
        try:
            st = os.lstat(self._p(rel))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail(exc, "read", rel) from exc
        return FileInfo(Path(rel).name, st.st_size, st.st_mtime)

    def delete(self, rel: str) -> None:
        self.guard(rel, last=False)  # unlink removes a link itself, never its target
        try:
            os.unlink(self._p(rel))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._fail(exc, "delete", rel) from exc

    def makedirs(self, rel: str) -> None:
        self.guard(rel)
        try:
            self._p(rel).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail(exc, "create", rel) from exc
