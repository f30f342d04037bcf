"""The ring's training turn as an NVIDIA FLARE (NVFlare) cyclic job.

For consortia that run NVFlare instead of our SSH ring server. The same
trainer, presets and data rules as the ring (``core.training.ring_turn``,
``core.site.training.approved_cases``); NVFlare carries the weights.

Modules: ``sites`` (which data folder a client trains on), ``controller``
(the server workflow: cyclic order and the paper's global patience),
``client`` (the site's turn on NVFlare's Client API), ``job`` (the job folder),
``simulate`` (NVFlare's simulator on one machine), ``result`` (the model file
the job publishes, and ``flare fetch``).

Only ``core.commands.flare`` imports this package (an import-linter contract),
and only this package imports nvflare: it is an optional extra
(``pip install -e .[flare]``).
"""

from __future__ import annotations

from ..errors import ConfigError

EXTRA_HINT = "install it with: pip install -e '.[flare]' (or pip install 'hematoma-relay[flare]')"


def require_nvflare() -> None:
    """A ConfigError a user can act on when the optional extra is missing."""
    try:
        import nvflare  # noqa: F401
    except ImportError:
        raise ConfigError(f"NVIDIA FLARE (nvflare) is not installed; {EXTRA_HINT}.") from None
