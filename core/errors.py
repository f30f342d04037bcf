"""Typed errors with messages a clinician can act on.

Core code raises these; the CLI prints ``str(error)`` on one line and exits with
status 2, the GUI shows it in a dialog or the status bar. Nothing else should
reach a user: any other exception is a bug.
"""

from __future__ import annotations

import unicodedata


class HemaRelayError(Exception):
    """Base of every error meant for a user. ``str()`` is the whole message."""

    exit_code = 2


class InputError(HemaRelayError):
    """A file or folder the user gave us cannot be used (corrupt, wrong kind...)."""


class NotCTError(InputError):
    """The image is readable but is not a head CT in Hounsfield units."""


class GeometryError(InputError):
    """Two images that must share a voxel grid do not (mask vs CT), or a
    series cannot be put on a regular grid."""


class ConfigError(HemaRelayError):
    """A configuration file or command-line option is invalid."""


class CancelledError(HemaRelayError):
    """Long work was cancelled by the user; nothing was published or written."""

    exit_code = 130


_CONTROL_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def printable(text: object, keep_newlines: bool = False) -> str:
    """``text`` without control characters (terminal escapes, bidi overrides...):
    each becomes '?', newlines kept only when asked."""
    out = []
    for ch in str(text):
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in _CONTROL_CATEGORIES:
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)
