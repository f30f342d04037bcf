"""Where this user's files live, one rule for the CLI and the application
(platformdirs: the XDG folders on Linux, the platform's own elsewhere).

- config (``settings.toml``): ``$HEMARELAY_CONFIG_DIR`` when set (tests use it),
  else ``~/.config/hemarelay`` on Linux;
- state (model versions, the embedded ring, audit logs): ``~/.local/state/hemarelay``
  on Linux (``$XDG_STATE_HOME`` respected).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_path, user_state_path

APP = "hemarelay"
CONFIG_ENV = "HEMARELAY_CONFIG_DIR"


def config_dir() -> Path:
    env = os.environ.get(CONFIG_ENV)
    return Path(env).expanduser() if env else user_config_path(APP, appauthor=False)


def state_dir() -> Path:
    return user_state_path(APP, appauthor=False)
