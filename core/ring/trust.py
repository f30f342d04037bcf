"""What this site pinned and verified, per ring: ``<dir>/<ring id>.json``.

Like ``known_hosts``: the members, order and signing keys pinned at first
contact, and the last history head this site verified (so that a shorter or
different history later is a rollback or a fork). Only :meth:`TrustStore.record`
writes it, after :func:`core.ring.signing.verify_chain` has said what to record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import ConfigError
from ..user_dirs import state_dir
from .names import check_name
from .schema import decode, encode

if TYPE_CHECKING:
    from .manifest import RingConfig

TRUST_FORMAT = 1


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
    """A ring's members, order and keys as this site first saw them, and its verified head."""

    sites: tuple[str, ...]
    order: str
    seed: int
    signers: dict[str, str] = field(default_factory=dict)
    head: Head | None = None

    @classmethod
    def of(cls, config: "RingConfig") -> "Pin":
        return cls(tuple(config.sites), config.order, config.seed, dict(config.signers))

    def same_members(self, other: "Pin") -> bool:
        return (self.sites, self.order, self.seed, self.signers) == (
            other.sites,
            other.order,
            other.seed,
            other.signers,
        )

    def changed_keys(self, other: "Pin") -> list[str]:
        """The sites whose key differs between the two pins."""
        return sorted(s for s in set(self.signers) | set(other.signers) if self.signers.get(s) != other.signers.get(s))


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
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"{path}: this site's record of the ring's keys cannot be read ({exc}); "
                "it is needed to check the ring's signatures."
            ) from None

    def put(self, ring_id: str, pin: Pin) -> None:
        from ..io.atomic import atomic_write_text

        doc = {"format": TRUST_FORMAT, "ring_id": ring_id, **encode(pin)}
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(self.path(ring_id), json.dumps(doc, indent=1) + "\n")

    def record(self, ring_id: str, first_contact: Pin | None, head: Head | None) -> None:
        """Write what a verification (:class:`core.ring.signing.Verified`) found to record:
        the pin at first contact, a newly verified head."""
        pin = first_contact or self.get(ring_id)
        if pin is None or (first_contact is None and head is None):
            return
        if head is not None:
            pin = Pin(pin.sites, pin.order, pin.seed, pin.signers, head)
        self.put(ring_id, pin)
