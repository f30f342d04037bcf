"""The one place a PACS client is made: the configured protocol's, with its password."""

from __future__ import annotations

from .client import PacsClient
from .config import DICOMWEB, PacsConfig
from .credentials import Prompt, password


def open_client(cfg: PacsConfig, prompt: Prompt | None = None) -> PacsClient:
    """The client for the configured protocol (validated; the password from
    :mod:`.credentials`, asked through ``prompt`` when nowhere else)."""
    cfg = cfg.require()
    if cfg.protocol == DICOMWEB:
        from .dicomweb import DicomwebClient

        return DicomwebClient(cfg, password(cfg, prompt))
    from .dimse import DimseClient

    return DimseClient(cfg)
