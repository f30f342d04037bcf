"""Where the PACS password comes from: never the settings file.

In order: ``$HEMARELAY_PACS_PASSWORD`` (a service account on a headless
machine, set by the site's IT in the service's environment), the OS keyring
(GNOME Keyring / KWallet through the Secret Service, macOS Keychain, Windows
Credential Locker; through the ``keyring`` package, filed under the service
``hemarelay-pacs`` and ``user@url``), then the caller's prompt (the CLI asks on
the terminal, the application in a password field). A prompted password can be
remembered in the keyring when one is available.
"""

from __future__ import annotations

import os
from typing import Callable

from ..errors import ConfigError
from .config import PacsConfig

ENV = "HEMARELAY_PACS_PASSWORD"
SERVICE = "hemarelay-pacs"

Prompt = Callable[[str], "str | None"]


def _keyring():
    """The keyring module when a real (not the failing or an insecure plain-text) backend is there."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001 - a broken keyring set-up must not stop the program: no keyring
        return None
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
        return None
    return keyring


def keyring_available() -> bool:
    return _keyring() is not None


def password(cfg: PacsConfig, prompt: Prompt | None = None) -> str | None:
    """The password for ``cfg`` (None: no user name, so no authentication)."""
    if not cfg.username:
        return None
    env = os.environ.get(ENV)
    if env:
        return env
    kr = _keyring()
    if kr is not None:
        try:
            stored = kr.get_password(SERVICE, cfg.credential_key())
        except Exception:  # noqa: BLE001 - a locked or broken keyring: fall through to the prompt
            stored = None
        if stored:
            return stored
    if prompt is not None:
        given = prompt(f"Password for {cfg.username} at {cfg.url}: ")
        if given:
            return given
    raise ConfigError(
        f"No password for the PACS user {cfg.username}: set {ENV}, or store it in the system keyring "
        "(File > PACS settings…, or 'hemarelay pacs find --remember-password')."
    )


def remember(cfg: PacsConfig, secret: str) -> None:
    """File the password in the OS keyring (ConfigError when there is none)."""
    kr = _keyring()
    if kr is None:
        raise ConfigError(f"No system keyring is available here; give the password in {ENV} or at the prompt instead.")
    try:
        kr.set_password(SERVICE, cfg.credential_key(), secret)
    except Exception as exc:  # noqa: BLE001 - keyring backends raise their own kinds
        raise ConfigError(f"The system keyring refused to store the PACS password ({exc}).") from None


def forget(cfg: PacsConfig) -> None:
    kr = _keyring()
    if kr is None:
        return
    try:
        kr.delete_password(SERVICE, cfg.credential_key())
    except Exception:  # noqa: BLE001 - nothing stored, or the backend cannot delete: nothing to do
        pass
