"""The user's preferences, stored as TOML in the user's config folder.

Never in the repository or beside the cases: the config folder of
:func:`core.user_dirs.config_dir` (``$HEMARELAY_CONFIG_DIR`` when set, which
tests use, else ``~/.config/hemarelay`` on Linux). A damaged file is reported and the
defaults are used; it is only overwritten when the user saves preferences.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (requires-python >= 3.10): the same parser, as a package
    import tomli as tomllib

from core.errors import ConfigError
from core.io import atomic_write_text
from core.pacs.config import PacsConfig, pacs_from_toml, pacs_to_toml
from core.site.setup import SiteSetup
from core.user_dirs import config_dir

FILE_NAME = "settings.toml"


@dataclass(frozen=True)
class WindowPreset:
    name: str
    width: float
    level: float
    key: str  # one keystroke

    def label(self) -> str:
        return f"{self.name} W{self.width:g}/L{self.level:g}"


DEFAULT_PRESETS = (
    WindowPreset("brain", 80, 40, "1"),
    WindowPreset("subdural", 200, 75, "2"),
    WindowPreset("stroke", 40, 40, "3"),
    WindowPreset("bone", 2000, 500, "4"),
)


@dataclass(frozen=True)
class OverlayPrefs:
    visible: bool = True
    opacity: float = 0.5  # 0..1
    outline: bool = False  # False: filled


@dataclass(frozen=True)
class Settings:
    # the reader's name, recorded with status changes, corrected masks and measurements; ""
    # until given (the application asks once, never takes the computer's login for it)
    user: str = ""
    presets: tuple[WindowPreset, ...] = DEFAULT_PRESETS
    blood_low_hu: float = 40.0
    blood_high_hu: float = 90.0
    brush_mm: float = 4.0  # brush diameter
    autosave_delay_s: float = 1.5
    manual: OverlayPrefs = OverlayPrefs()
    prediction: OverlayPrefs = OverlayPrefs(opacity=0.9, outline=True)
    last_folder: str = ""
    # the case open while the program ran ("" once closed): after a crash it is opened again,
    # with the offer to restore its autosaved edits
    open_case: str = ""
    site: SiteSetup = SiteSetup()  # this site in the training ring
    pacs: PacsConfig = PacsConfig()  # the hospital's PACS (no password: core/pacs/credentials.py)

    def validated(self) -> "Settings":
        for p in self.presets:
            if not (p.width > 0):
                raise ConfigError(f"window preset {p.name}: width must be positive, got {p.width:g}.")
        if self.blood_low_hu > self.blood_high_hu:
            raise ConfigError(
                f"blood range {self.blood_low_hu:g} to {self.blood_high_hu:g} HU: "
                "the lower bound exceeds the upper one."
            )
        if not (0.1 <= self.brush_mm <= 200):
            raise ConfigError(f"brush size {self.brush_mm:g} mm is outside 0.1 to 200 mm.")
        if not (0.2 <= self.autosave_delay_s <= 60):
            raise ConfigError(f"autosave delay {self.autosave_delay_s:g} s is outside 0.2 to 60 s.")
        for o in (self.manual, self.prediction):
            if not (0.0 <= o.opacity <= 1.0):
                raise ConfigError(f"overlay opacity {o.opacity:g} is outside 0 to 1.")
        return self  # the PACS set-up is checked where it is used (a moved CA file must not void the rest)


def settings_path() -> Path:
    return config_dir() / FILE_NAME


def _to_toml(s: Settings) -> dict:
    d = asdict(s)
    d["presets"] = [asdict(p) for p in s.presets]
    site = {k: v for k, v in asdict(s.site).items() if v is not None}  # TOML has no null
    site["overrides"] = list(s.site.overrides)
    d["site"] = site
    d["pacs"] = pacs_to_toml(s.pacs)
    return d


def _site_from_toml(d: dict) -> SiteSetup:
    base = SiteSetup()
    kw: dict = {}
    for name in ("site", "data_folder", "server", "key_file", "known_hosts", "preset", "start_from"):
        if name in d:
            kw[name] = str(d[name])
    if "overrides" in d:
        kw["overrides"] = tuple(str(x) for x in d["overrides"])
    if "keep_taking_turns" in d:
        kw["keep_taking_turns"] = bool(d["keep_taking_turns"])
    if "poll_s" in d:
        kw["poll_s"] = float(d["poll_s"])
    if "epochs_per_turn" in d:
        kw["epochs_per_turn"] = int(d["epochs_per_turn"])
    for name in ("max_epochs_per_turn", "max_auto_turns_per_hour"):
        if name in d:
            kw[name] = int(d[name])
    for name in ("share_optimizer", "allow_unsigned"):
        if name in d:
            kw[name] = bool(d[name])
    if "signing_key" in d:
        kw["signing_key"] = str(d["signing_key"])
    return replace(base, **kw)


def _from_toml(d: dict) -> Settings:
    base = Settings()
    try:
        kw = {}
        for name in ("user", "last_folder", "open_case"):
            if name in d:
                kw[name] = str(d[name])
        for name in ("blood_low_hu", "blood_high_hu", "brush_mm", "autosave_delay_s"):
            if name in d:
                kw[name] = float(d[name])
        if "presets" in d:
            kw["presets"] = tuple(
                WindowPreset(str(p["name"]), float(p["width"]), float(p["level"]), str(p["key"])) for p in d["presets"]
            )
        if "site" in d:
            kw["site"] = _site_from_toml(d["site"])
        if "pacs" in d:
            kw["pacs"] = pacs_from_toml(d["pacs"])
        for name in ("manual", "prediction"):
            if name in d:
                o = d[name]
                kw[name] = OverlayPrefs(
                    bool(o.get("visible", True)), float(o.get("opacity", 0.5)), bool(o.get("outline", False))
                )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{settings_path()}: a setting has the wrong form ({exc}).") from None
    return replace(base, **kw).validated()


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings, or the defaults when there is no file yet."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the settings ({exc.strerror or exc}).") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: the settings file is not valid TOML ({exc}); using the defaults.") from None
    return _from_toml(data)


def save_settings(s: Settings, path: Path | None = None) -> Path:
    path = path or settings_path()
    return atomic_write_text(path, tomli_w.dumps(_to_toml(s.validated())))
