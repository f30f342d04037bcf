"""A site's PACS set-up: which server, how to reach it, and the site's limits.

Stored in the ``[pacs]`` table of the user's ``settings.toml`` (the same file
the desktop application writes; ``hemarelay pacs`` reads it too). Never a
password: :mod:`core.pacs.credentials` finds that in the OS keyring or the
environment. Two kinds of server:

- ``dicomweb``: a base URL (``https://pacs.example.org/dicom-web``), a user name
  for HTTP basic authentication (empty: none), and a CA file to check an https
  server's certificate against (empty: the system's CAs);
- ``dimse``: the PACS's AE title, host and port, this workstation's AE title
  (the PACS must list it), and TLS on or off (DICOM TLS, with the same CA file).
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlparse

from ..errors import ConfigError
from ..user_dirs import config_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

DICOMWEB = "dicomweb"
DIMSE = "dimse"
PROTOCOLS = (DICOMWEB, DIMSE)
SETTINGS_FILE = "settings.toml"
# AE titles: up to 16 characters of the default repertoire, no backslash or control characters.
_AE_RE = re.compile(r"^[ -\[\]-~]{1,16}$")


@dataclass(frozen=True)
class PacsConfig:
    protocol: str = ""  # "dicomweb" or "dimse"; "" = no PACS configured
    url: str = ""  # DICOMweb base URL
    username: str = ""  # DICOMweb basic authentication ("" = none)
    ca_file: str = ""  # PEM CA bundle for https / DICOM TLS ("" = the system's)
    host: str = ""  # DIMSE peer
    port: int = 104
    called_ae: str = ""  # the PACS's AE title
    calling_ae: str = "HEMARELAY"  # this workstation's AE title (the PACS must allow it)
    tls: bool = False  # DIMSE over TLS
    timeout_s: float = 30.0  # one request or one DIMSE message
    max_study_mb: float = 2000.0  # larger retrieves are refused before anything is downloaded
    send_pdf: bool = False  # also store the PDF report as Encapsulated PDF

    @property
    def configured(self) -> bool:
        return bool(self.protocol)

    def describe(self) -> str:
        """The server in one line, no secret (status bar, CLI)."""
        if self.protocol == DICOMWEB:
            who = f"{self.username}@" if self.username else ""
            return f"DICOMweb {who}{self.url}"
        if self.protocol == DIMSE:
            tls = " (TLS)" if self.tls else ""
            return f"DIMSE {self.called_ae}@{self.host}:{self.port}{tls} as {self.calling_ae}"
        return "no PACS configured"

    def credential_key(self) -> str:
        """What the password is filed under in the keyring: user and server, no secret."""
        return f"{self.username}@{self.url}"

    def validated(self) -> "PacsConfig":
        if self.protocol not in ("", *PROTOCOLS):
            raise ConfigError(f"PACS protocol '{self.protocol}': use 'dicomweb' or 'dimse'.")
        if self.protocol == DICOMWEB:
            u = urlparse(self.url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ConfigError(
                    f"PACS URL '{self.url}': give the DICOMweb base URL, e.g. https://pacs.example.org/dicom-web."
                )
        if self.protocol == DIMSE:
            if not self.host.strip():
                raise ConfigError("PACS host: give the PACS's host name or address.")
            if not (1 <= int(self.port) <= 65535):
                raise ConfigError(f"PACS port {self.port}: use 1 to 65535.")
            for name, ae in (("the PACS's AE title", self.called_ae), ("this workstation's AE title", self.calling_ae)):
                if not _AE_RE.match(ae) or not ae.strip():
                    raise ConfigError(f"{name} '{ae}': 1 to 16 letters, digits or spaces (no backslash).")
        if self.ca_file and not Path(self.ca_file).expanduser().is_file():
            raise ConfigError(f"The PACS CA file {self.ca_file} does not exist.")
        if not (1.0 <= self.timeout_s <= 600.0):
            raise ConfigError(f"PACS timeout {self.timeout_s:g} s: use 1 to 600 s.")
        if not (1.0 <= self.max_study_mb <= 1_000_000.0):
            raise ConfigError(f"PACS size limit {self.max_study_mb:g} MB: use 1 MB to 1 TB.")
        return self

    def require(self) -> "PacsConfig":
        """Itself, validated, when a PACS is configured; else the error saying how to configure one."""
        if not self.configured:
            raise ConfigError(
                "No PACS is configured: set it in the application (File > PACS settings…) or in the "
                f"[pacs] table of {config_dir() / SETTINGS_FILE} (see the README, 'The hospital's PACS')."
            )
        return self.validated()


def pacs_to_toml(cfg: PacsConfig) -> dict:
    return asdict(cfg)


def pacs_from_toml(d: dict) -> PacsConfig:
    """The ``[pacs]`` table; unknown keys are refused (a password put there by hand included)."""
    if not isinstance(d, dict):
        raise ConfigError("[pacs] in the settings must be a table.")
    known = {f.name: f.type for f in fields(PacsConfig)}
    extra = sorted(set(d) - set(known))
    if extra:
        hint = " Passwords never go in the settings file: see the README." if any("pass" in k for k in extra) else ""
        raise ConfigError(f"[pacs] in the settings: unknown setting(s) {', '.join(extra)}.{hint}")
    kw: dict = {}
    try:
        for name, value in d.items():
            default = getattr(PacsConfig(), name)
            if isinstance(default, bool):
                kw[name] = bool(value)
            elif isinstance(default, int):
                kw[name] = int(value)
            elif isinstance(default, float):
                kw[name] = float(value)
            else:
                kw[name] = str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[pacs] in the settings: a value has the wrong form ({exc}).") from None
    return replace(PacsConfig(), **kw)


def _settings(path: Path | None = None) -> dict:
    path = path or config_dir() / SETTINGS_FILE
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the settings ({exc.strerror or exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: the settings file is not valid TOML ({exc}).") from None


def load_pacs_config(path: Path | None = None) -> PacsConfig:
    """The ``[pacs]`` table of the user's settings file (defaults when there is none)."""
    return pacs_from_toml(_settings(path).get("pacs", {})).validated()


def site_data_folder(path: Path | None = None) -> str:
    """The site's worklist folder of the settings ("" when none is set): where ``pacs get`` puts cases."""
    site = _settings(path).get("site", {})
    return str(site.get("data_folder", "")) if isinstance(site, dict) else ""
