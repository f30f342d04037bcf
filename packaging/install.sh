#!/usr/bin/env bash
# Install the built application for one user (no root needed):
#   packaging/install.sh [BUNDLE_DIR]   (default packaging/dist/hemarelay)
# puts it in $PREFIX/opt/hemarelay (PREFIX defaults to ~/.local), links
# $PREFIX/bin/hemarelay and installs the desktop entry and icon from resources/.
# For all users: sudo PREFIX=/usr/local packaging/install.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "${1:-$HERE/dist/hemarelay}" && pwd)"
PREFIX="${PREFIX:-$HOME/.local}"
DEST="$PREFIX/opt/hemarelay"
RES="$SRC/_internal/resources"
[[ -x "$SRC/hemarelay" && -d "$RES" ]] || { echo "install: $SRC is not a built bundle" >&2; exit 1; }

rm -rf "$DEST"
mkdir -p "$PREFIX/opt" "$PREFIX/bin" "$PREFIX/share/applications" "$PREFIX/share/icons/hicolor/scalable/apps"
cp -a "$SRC" "$DEST"
ln -sfn "$DEST/hemarelay" "$PREFIX/bin/hemarelay"
cp "$RES/icons/hemarelay.svg" "$PREFIX/share/icons/hicolor/scalable/apps/hemarelay.svg"
# The launcher must not depend on PATH: point Exec at the installed binary.
sed "s|^Exec=hemarelay |Exec=$DEST/hemarelay |" "$RES/hemarelay.desktop" \
    > "$PREFIX/share/applications/hemarelay.desktop"
echo "installed Hematoma Relay in $DEST (launcher: $PREFIX/share/applications/hemarelay.desktop)"
