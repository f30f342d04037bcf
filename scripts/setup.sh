#!/usr/bin/env bash
# Idempotent set-up of everything Hematoma Relay needs on a fresh Debian/Ubuntu
# machine: a venv in .venv with the CPU torch wheel, the project and its GUI
# and test extras; as root, the system packages for the real SFTP tests
# (openssh-server), the PACS tests (Orthanc) and for Qt offscreen/Xvfb screenshots. The `flare` extra
# (NVIDIA FLARE) is installed too, so the NVFlare tests run.
#   scripts/setup.sh          # app + tests
#   HEMARELAY_NO_APT=1 ...    # skip apt-get (no root, or packages present)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

apt_pkgs=(openssh-server xvfb libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1
          libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 poppler-utils)
# A real PACS for the PACS tests (core/pacs): Orthanc with its DICOMweb plugin. The tests
# start their own instance on loopback; the system service is never used.
apt_pkgs+=(orthanc orthanc-dicomweb)
if [ "$(id -u)" = 0 ] && [ -z "${HEMARELAY_NO_APT:-}" ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.hemarelay-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages (first run takes a few minutes)"
  log=.venv/setup.log
  {
    .venv/bin/python -m pip install --upgrade pip
    # The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
    .venv/bin/python -m pip install "torch==2.13.0"
    .venv/bin/python -m pip install -e ".[gui,dev,flare]"
  } >"$log" 2>&1 || { tail -30 "$log" >&2; echo "setup: pip failed; full log in $log" >&2; exit 1; }
  .venv/bin/python -c "import torch, nibabel, SimpleITK, paramiko, PySide6, pyqtgraph, nvflare, pynetdicom, dicomweb_client, keyring" \
    || { echo "setup: Python packages failed to install" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
