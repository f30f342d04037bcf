"""What this site pinned and verified, per ring: ``<dir>/<ring id>.json``.

Like ``known_hosts``: the members, order, signing keys and settings a person
at this site confirmed at first contact (:meth:`TrustStore.pin`), and the last
history head this site verified (so that a shorter or different history later
is a rollback or a fork). Nothing here pins a ring by itself: a ring nobody
confirmed is refused (:func:`core.ring.signing.verify_chain`).

The desktop application's sync and its training process (a child process)
both verify the ring: every write takes the store's lock and re-reads the file
first, and the head only ever moves forward (one writer at a time, never a
stale one).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterator

from ..errors import ConfigError
from ..user_dirs import state_dir
from .names import check_name
from .schema import decode, encode

if TYPE_CHECKING:
    from .manifest import RingConfig

TRUST_FORMAT = 1
LOCK_FILE = ".lock"


def default_trust_dir(site: str) -> Path:
    return state_dir() / "ring-trust" / site


@dataclass(frozen=True)
class Head:
    turn: int  # 0-based turn of the last verified record
    version: int
    hash: str  # record_hash of it

    NAMES: ClassVar = {"hash": "sha256"}


@dataclass(frozen=True)
class Pin:
    """A ring's members, order, keys and settings as a person at this site confirmed
    them, and its verified head. A pin made from a signers file alone (``order`` "")
    holds only the keys: the members are the keys' sites."""

    sites: tuple[str, ...]
    order: str
    seed: int
    signers: dict[str, str] = field(default_factory=dict)
    config_sha256: str = ""  # the settings confirmed ("" in a keys-only pin)
    head: Head | None = None

    NAMES: ClassVar = {"config_sha256": "sha256"}

    @classmethod
    def of(cls, config: "RingConfig", settings_sha256: str = "") -> "Pin":
        return cls(tuple(config.sites), config.order, config.seed, dict(config.signers), settings_sha256)

    @classmethod
    def keys_only(cls, signers: dict[str, str]) -> "Pin":
        return cls(tuple(sorted(signers)), "", 0, dict(signers))

    def same_members(self, shown: "Pin") -> bool:
        if {s: k.split()[:2] for s, k in self.signers.items()} != {s: k.split()[:2] for s, k in shown.signers.items()}:
            return False
        if not self.order:  # keys only
            return set(self.sites) == set(shown.sites)
        return (self.sites, self.order, self.seed) == (shown.sites, shown.order, shown.seed) and (
            not self.config_sha256 or self.config_sha256 == shown.config_sha256
        )

    def changed_keys(self, other: "Pin") -> list[str]:
        """The sites whose key differs between the two pins."""
        return sorted(
            s
            for s in set(self.signers) | set(other.signers)
            if (self.signers.get(s) or "").split()[:2] != (other.signers.get(s) or "").split()[:2]
        )


class TrustStore:
    """The pins of one site (``<dir>/<ring id>.json`` each)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, ring_id: str) -> Path:
        check_name("ring id", ring_id, "ring id")
        return self.folder / f"{ring_id}.json"

    def get(self, ring_id: str) -> Pin | None:
        path = self.path(ring_id)
        try:
            return decode(Pin, json.loads(path.read_text(encoding="utf-8")), "")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, RecursionError) as exc:
            raise ConfigError(
                f"{path}: this site's record of the ring's keys cannot be read ({exc}); "
                "it is needed to check the ring's signatures."
            ) from None

    def pin(self, ring_id: str, pin: Pin) -> Pin:
        """Record the members, keys and settings a person confirmed (first contact). A
        ring already pinned keeps its pin and head; one pinned differently is refused."""
        with self._locked():
            current = self.get(ring_id)
            if current is not None:
                if not current.same_members(pin):
                    raise ConfigError(
                        f"{self.path(ring_id)} already pins other keys or settings for this ring; "
                        "remove it first if the coordinator really changed them."
                    )
                return current
            self._write(ring_id, pin)
            return pin

    def advance(self, ring_id: str, head: Head) -> None:
        """Record a newly verified head; never moves it back (a writer that verified an
        older manifest than another one did leaves the newer head in place)."""
        with self._locked():
            current = self.get(ring_id)
            if current is None or (current.head is not None and current.head.turn >= head.turn):
                return
            self._write(ring_id, replace(current, head=head))

    def _write(self, ring_id: str, pin: Pin) -> None:
        from ..io.atomic import atomic_write_text

        doc = {"format": TRUST_FORMAT, "ring_id": ring_id, **encode(pin)}
        atomic_write_text(self.path(ring_id), json.dumps(doc, indent=1) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's lock (flock: released by the system if its holder dies)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
