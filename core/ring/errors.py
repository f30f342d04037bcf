"""Errors of the training ring, each a one-line message naming the cause.

``ServerUnreachableError`` (and its subclass ``ConnectionLostError``) are the
transient ones: during a turn they are retried with backoff; every other
``ServerError`` stops the turn at once.
"""

from __future__ import annotations

from ..errors import HemaRelayError


class ServerError(HemaRelayError):
    """The shared ring server (SFTP or folder) cannot be used as asked."""


class ServerUnreachableError(ServerError):
    """No connection to the server (refused, timed out, name unknown)."""


class ConnectionLostError(ServerUnreachableError):
    """An open connection dropped in the middle of an operation."""


class HostKeyError(ServerError):
    """The server's host key is unknown or differs from known_hosts."""


class ServerAuthError(ServerError):
    """The server refused our key (or the key file cannot be used)."""


class ServerPermissionError(ServerError):
    """The server refused to read or write in the ring folder."""


class CorruptWeightsError(ServerError):
    """A weights or optimizer file on the server fails its sha256 or cannot be decoded."""


class RingStateError(ServerError):
    """The ring folder has no valid manifest, or the manifest forbids the request."""


class ServerFileTooLargeError(RingStateError):
    """A file on the server is larger than this site accepts to read (a size cap)."""


class UnsafeServerPathError(ServerPermissionError):
    """The ring folder holds a link (or a name) that could lead outside it: refused."""


class LeaseLostError(ServerError):
    """Another site broke our lease (we stalled past its expiry); the turn is void."""


class ManifestConflictError(ServerError):
    """The manifest changed under us while we held the lease; nothing was published."""


class TrainerUnavailableError(HemaRelayError):
    """No trainer can take a turn (the chosen trainer is not installed or not built)."""
