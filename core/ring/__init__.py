"""The training ring: sites take turns training one model through a shared server.

Only weights, optimizer state and scalar metrics ever leave a site. The ring
knows nothing about hematomas: any :class:`TurnTrainer` can take a turn.

Modules: ``transport`` (+ ``transport_dir``, ``transport_sftp``, opened by
``connect``): the server; ``manifest`` (its parts: ``config``, the settings and
the ring order; ``records``; read and written by ``schema``), ``server``: the
ring folder's layout; ``lease``: the lock, taken by ``acquire``; ``retry``:
lost connections; ``convergence``: when to stop; ``codec``: weights files;
``turn``: the protocol; ``audit``: the site's local log; ``status``: the ring
in words; ``trainer``: what a trainer must offer; ``toy``: a tiny trainer
without medical data. Which trainer takes a site's turns is chosen above the
ring, in :mod:`core.turn_trainers`. ``keys``: signing keys; ``signing``:
signed turns and their verification; ``trust``: pinned keys and the verified
head; ``names``: the one validator for names from the server;
``server_audit``: ``ring audit``.
"""

from ..lazy import lazy_getattr

# Where each name lives; imported on first use, so that reading an error class or the
# manifest does not load torch (the weights codec) into the desktop application at start-up.
_EXPORTS = {
    **dict.fromkeys(
        (
            "ConnectionLostError",
            "CorruptWeightsError",
            "HostKeyError",
            "LeaseLostError",
            "ManifestConflictError",
            "RingStateError",
            "ServerAuthError",
            "ServerError",
            "ServerPermissionError",
            "ServerUnreachableError",
            "TrainerUnavailableError",
        ),
        "errors",
    ),
    **dict.fromkeys(("Manifest", "RingConfig", "TurnRecord", "read_manifest"), "manifest"),
    **dict.fromkeys(("fetch_weights", "init_ring"), "server"),
    **dict.fromkeys(("TurnInput", "TurnResult", "TurnTrainer"), "trainer"),
    "open_transport": "connect",
    **dict.fromkeys(("ServerLocation", "Transport", "parse_server_url"), "transport"),
    **dict.fromkeys(("SiteOptions", "SiteRun", "TurnOutcome", "TurnTimings", "run_site", "take_turn"), "turn"),
}


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())

__all__ = list(_EXPORTS)
