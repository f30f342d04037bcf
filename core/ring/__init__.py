"""The training ring: sites take turns training one model through a shared server.

Only weights, optimizer state and scalar metrics ever leave a site. The ring
knows nothing about hematomas: any :class:`TurnTrainer` can take a turn.

Modules: ``transport`` (+ ``transport_dir``, ``transport_sftp``): the server;
``manifest``, ``server``: the ring folder's layout; ``lease``: the lock;
``order``, ``convergence``: whose turn, when to stop; ``codec``: weights files;
``turn``: the protocol; ``audit``: the site's local log; ``privacy``: server
content checks; ``status``: the ring in words; ``factory``, ``toy``: trainers.
"""
from .errors import (ConnectionLostError, CorruptWeightsError, HostKeyError, LeaseLostError,
                     ManifestConflictError, RingStateError, ServerAuthError, ServerError,
                     ServerPermissionError, ServerUnreachableError, TrainerUnavailableError)
from .factory import trainer_factory
from .manifest import Manifest, RingConfig, TurnRecord
from .server import fetch_weights, init_ring, read_manifest
from .trainer import TurnInput, TurnResult, TurnTrainer
from .transport import ServerLocation, Transport, open_transport, parse_server_url
from .turn import SiteOptions, SiteRun, TurnOutcome, TurnTimings, run_site, take_turn

__all__ = [
    "ConnectionLostError", "CorruptWeightsError", "HostKeyError", "LeaseLostError",
    "ManifestConflictError", "RingStateError", "ServerAuthError", "ServerError",
    "ServerPermissionError", "ServerUnreachableError", "TrainerUnavailableError",
    "trainer_factory", "Manifest", "RingConfig", "TurnRecord", "fetch_weights", "init_ring",
    "read_manifest", "TurnInput", "TurnResult", "TurnTrainer", "ServerLocation", "Transport",
    "open_transport", "parse_server_url", "SiteOptions", "SiteRun", "TurnOutcome", "TurnTimings",
    "run_site", "take_turn",
]
