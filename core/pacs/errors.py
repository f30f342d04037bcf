"""The PACS's errors: one line a clinician (or the site's IT) can act on."""

from __future__ import annotations

from ..errors import HemaRelayError, InputError


class PacsError(HemaRelayError):
    """The PACS could not be reached, refused us, or stopped answering."""


class PacsDataError(InputError):
    """The PACS answered, but what it holds cannot become a case (not CT, slices
    missing, over the site's size limit)."""
