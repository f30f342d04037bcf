"""Signed turns: a site trusts weights only when the site whose turn it was signed them.

The server (and any member with write access to the ring folder) can rewrite
every file on it, so the sha256 in the manifest proves nothing by itself. Each
site holds an Ed25519 key (an OpenSSH private key file, ``ssh-keygen -t
ed25519`` format, optionally passphrase-protected); its public key is listed
for its site name in the ring's ``config.signers`` at ``ring init`` (an
``allowed_signers``-style file: ``site ssh-ed25519 AAAA...`` per line).

Every turn record is signed by its publisher over a canonical encoding of what
it publishes (ring id, turn, round, site, version, parent version, the hash of
the previous turn's record, weights and optimizer sha256, scalar metrics),
under the namespace ``hemarelay``. A site checks, before training from or
keeping any weights (:func:`verify_chain`):

- the members and keys are those it pinned at first contact (like known_hosts;
  :class:`TrustStore`), so the server cannot swap a key;
- every record is signed by the key of its site, and that site is the one whose
  turn it was (or took it over after a lease break, naming the rightful one);
- every record names the hash of the one before (a chain), and the manifest's
  current and best weights are exactly those of signed records (substitution);
- the chain extends the last head this site verified, kept locally: fewer
  turns than that head is a **rollback**, a different record at that turn a
  **fork** (a server showing different histories to different sites).

Any failure is a :class:`RingTrustError` naming what was refused and why.
Local evaluation stays the gate for *using* a version; this is the gate for
even looking at it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import ConfigError
from ..user_dirs import state_dir
from .errors import RingStateError
from .keys import check_public_key, key_fingerprint, public_line
from .manifest import Manifest, TurnRecord, site_for_turn
from .names import check_name, printable

NAMESPACE = b"hemarelay"
RECORD_FORMAT = "hemarelay-turn/1"
TRUST_FORMAT = 1


class RingTrustError(RingStateError):
    """What the server shows cannot be trusted: a bad or missing signature, a
    changed key, substituted weights, a rollback or a fork. ``kind`` names it."""

    def __init__(self, kind: str, message: str, version: int | None = None, site: str | None = None) -> None:
        super().__init__(message)
        self.kind, self.version, self.site = kind, version, site


# -- keys ----------------------------------------------------------------------


def check_key_file_mode(path: Path) -> None:
    """Refuse a private key others can read (as ssh does)."""
    st = path.stat()
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"The key file {path} can be read by other users (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); restrict it with: chmod 600 {path}"
        )


class TurnSigner:
    """This site's signing key."""

    def __init__(self, site: str, key: Ed25519PrivateKey) -> None:
        self.site, self.key = site, key
        self.public = public_line(key.public_key())

    @classmethod
    def load(cls, site: str, path: Path, passphrase: str | None = None) -> "TurnSigner":
        path = Path(path).expanduser()
        try:
            check_key_file_mode(path)
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"The signing key file {path} does not exist.") from None
        except OSError as exc:
            raise ConfigError(f"The signing key file {path} cannot be read: {exc.strerror}.") from None
        try:
            key = serialization.load_ssh_private_key(data, passphrase.encode() if passphrase else None)
        except TypeError:
            raise ConfigError(
                f"The signing key {path} is protected by a passphrase: give it "
                "(HEMARELAY_KEY_PASSPHRASE, or the prompt)."
            ) from None
        except ValueError as exc:
            wrong = "incorrect password" in str(exc).lower() or "bad decrypt" in str(exc).lower()
            raise ConfigError(
                f"The signing key {path}: " + ("wrong passphrase." if wrong else "not an OpenSSH private key file.")
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"The signing key {path} is not an Ed25519 key (make one with ssh-keygen -t ed25519).")
        return cls(site, key)

    @classmethod
    def load_or_create(cls, site: str, path: Path, passphrase: str | None = None) -> "TurnSigner":
        """The key at ``path``, created (mode 0600) on first use."""
        path = Path(path).expanduser()
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            enc = (
                serialization.BestAvailableEncryption(passphrase.encode())
                if passphrase
                else serialization.NoEncryption()
            )
            data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return cls.load(site, path, passphrase)  # created meanwhile by another process
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            (path.with_name(path.name + ".pub")).write_text(f"{public_line(key.public_key())} {site}\n")
        return cls.load(site, path, passphrase)

    def sign(self, payload: bytes) -> str:
        return self.key.sign(NAMESPACE + b"\0" + payload).hex()  # hex: no '/' or '+' for scanners to trip on


def default_key_path(site: str) -> Path:
    return state_dir() / "keys" / f"ring-{site}.ed25519"


def default_trust_dir(site: str) -> Path:
    return state_dir() / "ring-trust" / site


def read_signers_file(path: Path) -> dict[str, str]:
    """``site ssh-ed25519 AAAA... [comment]`` per line (OpenSSH allowed_signers style)."""
    out: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"The signers file {path} cannot be read: {exc.strerror or exc}.") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 3:
            raise ConfigError(f"{path} line {n}: expected 'site ssh-ed25519 AAAA...'.")
        site, key = parts[0], f"{parts[1]} {parts[2]}"
        try:
            check_name("site", site, f"{path} line {n}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        check_public_key(key, f"{path} line {n}")
        if site in out:
            raise ConfigError(f"{path} line {n}: site {site} is listed twice.")
        out[site] = key
    return out


# -- records -------------------------------------------------------------------


def record_payload(ring_id: str, r: TurnRecord) -> bytes:
    """The canonical bytes a turn's publisher signs."""
    doc: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "ring_id": ring_id,
        "turn": r.turn,
        "round": r.round,
        "site": r.site,
        "in_place_of": r.in_place_of,
        "version": r.version,
        "parent_version": r.parent_version,
        "parent_hash": r.parent_hash,
        "weights_file": r.weights_file,
        "weights_sha256": r.weights_sha256,
        "optimizer_sha256": r.optimizer_sha256,
        "epochs": r.epochs,
        "n_examples": r.n_examples,
        "metrics": {k: float(v) for k, v in sorted(r.metrics.items())},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def record_hash(ring_id: str, r: TurnRecord) -> str:
    return hashlib.sha256(record_payload(ring_id, r) + b"\0" + r.signature.encode()).hexdigest()


def verify_record(ring_id: str, r: TurnRecord, key_line: str) -> bool:
    try:
        sig = bytes.fromhex(r.signature)
        check_public_key(key_line, "key").verify(sig, NAMESPACE + b"\0" + record_payload(ring_id, r))
        return True
    except (InvalidSignature, ValueError, ConfigError):
        return False


# -- what this site pinned and verified ----------------------------------------


@dataclass(frozen=True)
class Head:
    turn: int  # 0-based turn of the last verified record
    version: int
    hash: str  # record_hash of it


@dataclass(frozen=True)
class Pin:
    sites: tuple[str, ...]
    order: str
    seed: int
    signers: dict[str, str]
    head: Head | None = None


class TrustStore:
    """``<dir>/<ring id>.json``: the members and keys pinned at first contact
    and the last verified head, per ring."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, ring_id: str) -> Path:
        check_name("ring id", ring_id, "ring id")
        return self.folder / f"{ring_id}.json"

    def get(self, ring_id: str) -> Pin | None:
        path = self._path(ring_id)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            h = d.get("head")
            return Pin(
                tuple(d["sites"]),
                d["order"],
                int(d["seed"]),
                dict(d["signers"]),
                Head(int(h["turn"]), int(h["version"]), str(h["hash"])) if h else None,
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path}: this site's record of the ring's keys cannot be read ({exc}); "
                "it is needed to check the ring's signatures."
            ) from None

    def put(self, ring_id: str, pin: Pin) -> None:
        from ..io.atomic import atomic_write_text

        doc = {
            "format": TRUST_FORMAT,
            "ring_id": ring_id,
            "sites": list(pin.sites),
            "order": pin.order,
            "seed": pin.seed,
            "signers": pin.signers,
            "head": None
            if pin.head is None
            else {"turn": pin.head.turn, "version": pin.head.version, "hash": pin.head.hash},
        }
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(self._path(ring_id), json.dumps(doc, indent=1) + "\n")


@dataclass(frozen=True)
class Verified:
    """The part of the history this site may use: every record up to the first
    refused one (all of them when ``problem`` is None)."""

    records: tuple[TurnRecord, ...]
    signed: bool  # False: an unsigned ring (allowed only when the site agrees)
    problem: RingTrustError | None = None

    def weights_ok(self, sha256: str) -> bool:
        return any(r.weights_sha256 == sha256 for r in self.records)

    def raise_problem(self) -> None:
        if self.problem is not None:
            raise self.problem


def _refuse(kind: str, msg: str, r: TurnRecord | None = None) -> RingTrustError:
    return RingTrustError(kind, printable(msg), r.version if r else None, r.site if r else None)


def verify_chain(
    m: Manifest, store: TrustStore | None, require_signed: bool = True, update_head: bool = True
) -> Verified:
    """Check ``m`` as described in the module docstring; pin the ring's members
    and keys at first contact and advance the verified head (``store``)."""
    cfg = m.config
    records = tuple(m.turn_records)
    if not cfg.signers:
        pinned = store.get(m.ring_id) if store else None
        if pinned is not None and pinned.signers:
            raise _refuse(
                "key-change",
                f"The ring {m.ring_id[:8]} was signed when this site first saw it, "
                "but the server now shows it without signing keys; refused.",
            )
        if require_signed:
            raise _refuse(
                "unsigned",
                f"The ring {m.ring_id[:8]} has no signing keys, so weights on it "
                "cannot be traced to the site that trained them; this site only "
                "joins signed rings (ask the coordinator to create it with "
                "'hemarelay ring init --signers FILE').",
            )
        return Verified(records, signed=False)
    pin = store.get(m.ring_id) if store else None
    now = Pin(tuple(cfg.sites), cfg.order, cfg.seed, dict(cfg.signers))
    if pin is None:
        pin = now
        if store is not None:
            store.put(m.ring_id, pin)  # first contact: these members and keys from now on
    elif (pin.sites, pin.order, pin.seed, pin.signers) != (now.sites, now.order, now.seed, now.signers):
        changed = [s for s in set(pin.signers) | set(now.signers) if pin.signers.get(s) != now.signers.get(s)]
        what = (
            f"the signing key of site(s) {', '.join(sorted(changed))} changed"
            if changed
            else "its members or order changed"
        )
        raise _refuse(
            "key-change",
            f"The ring {m.ring_id[:8]} is not the one this site pinned at first "
            f"contact: {what}. Refused; if the consortium really re-keyed, remove "
            f"{store._path(m.ring_id) if store else 'the pin'} after checking "
            "with its coordinator.",
        )
    good: list[TurnRecord] = []
    problem: RingTrustError | None = None
    prev_hash = ""
    for i, r in enumerate(records):
        rightful = site_for_turn(cfg, r.turn) if r.turn >= 0 else "?"
        if r.turn != i or r.version != i + 1 or r.parent_version != i:
            problem = _refuse(
                "substitution",
                f"Version {r.version} from site {r.site}: the history is out of sequence at turn {i + 1}; refused.",
                r,
            )
        elif not r.signature:
            problem = _refuse("unsigned", f"Version {r.version} from site {r.site} is not signed; refused.", r)
        elif r.site != rightful and r.in_place_of != rightful:
            problem = _refuse(
                "substitution",
                f"Version {r.version} is signed by site {r.site}, but turn "
                f"{r.turn + 1} was site {rightful}'s; refused.",
                r,
            )
        elif r.parent_hash != prev_hash:
            problem = _refuse(
                "fork",
                f"Version {r.version} from site {r.site} does not extend the previous "
                f"turn's record (a forked history); refused.",
                r,
            )
        elif not verify_record(m.ring_id, r, pin.signers.get(r.site, "")):
            problem = _refuse(
                "signature",
                f"Version {r.version} from site {r.site}: its signature does not "
                f"match site {r.site}'s key (weights or record replaced on the "
                "server); refused.",
                r,
            )
        if problem is not None:
            break
        good.append(r)
        prev_hash = record_hash(m.ring_id, r)
    if problem is None:
        problem = _check_pointers(m, records)
    if pin.head is not None:
        h = pin.head
        if len(records) <= h.turn:
            problem = _refuse(
                "rollback",
                f"The server shows {len(records)} turn(s), but this site already "
                f"verified turn {h.turn + 1} (version {h.version}): the history was "
                "rolled back; refused.",
            )
            good = []
        elif record_hash(m.ring_id, records[h.turn]) != h.hash:
            problem = _refuse(
                "fork",
                f"The server's turn {h.turn + 1} differs from the one this site verified "
                f"(version {h.version}): the history was forked or rewritten; refused.",
            )
            good = []
    if update_head and store is not None and good and problem is None:
        last = good[-1]
        if pin.head is None or last.turn > pin.head.turn:
            store.put(
                m.ring_id,
                Pin(
                    pin.sites,
                    pin.order,
                    pin.seed,
                    pin.signers,
                    Head(last.turn, last.version, record_hash(m.ring_id, last)),
                ),
            )
    return Verified(tuple(good), signed=True, problem=problem)


def _check_pointers(m: Manifest, records: Iterable[TurnRecord]) -> RingTrustError | None:
    """The manifest's current, optimizer and best weights must be signed ones."""
    records = list(records)
    last = records[-1] if records else None
    if m.turns_done != len(records):
        return _refuse(
            "substitution",
            f"The manifest counts {m.turns_done} turns but holds {len(records)} signed records; refused.",
        )
    if last is None:
        if m.weights is not None or m.best is not None or m.optimizer is not None:
            return _refuse("substitution", "The manifest names weights although no signed turn produced any; refused.")
        return None
    w = m.weights
    if w is None or (w.sha256, w.file, w.version) != (last.weights_sha256, last.weights_file, last.version):
        return _refuse(
            "substitution",
            f"The latest weights named by the manifest are not those site "
            f"{last.site} signed for version {last.version} (weights and hash "
            "replaced on the server); refused.",
            last,
        )
    o = m.optimizer
    if (o.sha256 if o else "") != last.optimizer_sha256:
        return _refuse(
            "substitution",
            f"The optimizer state named by the manifest is not the one site "
            f"{last.site} signed for version {last.version}; refused.",
            last,
        )
    if m.best is not None:
        src = next(
            (
                r
                for r in records
                if r.weights_sha256 == m.best.weights.sha256
                and r.weights_file == m.best.weights.file
                and r.version == m.best.weights.version
            ),
            None,
        )
        if src is None or src.metrics.get("val_loss") != m.best.val_loss:
            return _refuse(
                "substitution",
                f"The 'best' weights (version {m.best.weights.version}) are not a "
                "signed turn's weights with its validation loss; refused.",
            )
    return None


def sign_record(signer: TurnSigner, ring_id: str, r: TurnRecord) -> TurnRecord:
    from dataclasses import replace

    return replace(r, signature=signer.sign(record_payload(ring_id, r)))


def check_own_key(m: Manifest, signer: TurnSigner | None, site: str) -> None:
    """Before training: a signed ring needs this site's key to be the one it lists."""
    if not m.config.signers:
        return
    if signer is None:
        raise ConfigError(f"The ring {m.ring_id[:8]} is signed: this site needs its signing key to take a turn.")
    listed = m.config.signers.get(site)
    if listed is None or listed.split()[:2] != signer.public.split()[:2]:
        raise ConfigError(
            f"This site's signing key ({key_fingerprint(signer.public)}) is not the key the ring "
            f"lists for site {site} ({key_fingerprint(listed) if listed else 'none'}); "
            "nothing was trained."
        )
