#!/usr/bin/env bash
# Smoke test of the built application (packaging/dist/hemarelay) in an empty
# environment: no Python, no venv, no PYTHONPATH, only /usr/bin:/bin on PATH.
#   1. --version (start-up time of the command-line tool)
#   2. the GUI starts offscreen, opens a real CT, paints it and quits by itself
#   3. trains a tiny model with the bundle, then a whole-volume prediction
#   4. installs it for a throw-away user (desktop entry + icon) and runs it from there
# Real data: $HEMARELAY_DATA or ../shared/data beside the project (CT-ICH site-a).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
APP="${APP:-$HERE/dist/hemarelay/hemarelay}"
DATA="${HEMARELAY_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}"
SITE="$DATA/ctich/site-a"
CT="$SITE/test/ct_067.nii.gz"

[[ -x "$APP" ]] || { echo "smoke test: $APP not built (run packaging/build.sh)" >&2; exit 1; }
[[ -f "$CT" ]] || { echo "smoke test: real data not found: $CT (set HEMARELAY_DATA)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/home" "$tmp/site/train" "$tmp/case" "$tmp/pred"
for id in 049 050; do
    ln -s "$SITE/train/ct_$id.nii.gz" "$SITE/train/mask_$id.nii.gz" "$tmp/site/train/"
done
ln -s "$CT" "$tmp/case/"  # the GUI may write recovery files beside the case: not into shared data

# Nothing from the caller's environment leaks in.
bare() { env -i PATH=/usr/bin:/bin HOME="$tmp/home" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen "$@"; }
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
if bare sh -c 'command -v python3 || command -v python' >/dev/null; then
    echo "note: a system python exists on /usr/bin; the bundle must not (and does not) use it"
fi

echo "== 1. --version"
t0=$EPOCHREALTIME
version="$(bare "$APP" --version)"
echo "$version (start-up $(seconds_since "$t0") s)"
[[ "$version" == hemarelay\ * ]]

echo "== 2. GUI, offscreen, opens $(basename "$CT")"
t0=$EPOCHREALTIME
bare HEMARELAY_SMOKE_TEST=120 "$APP" gui --case "$tmp/case/$(basename "$CT")"
echo "GUI start + case open + first paint: $(seconds_since "$t0") s"
t0=$EPOCHREALTIME
bare HEMARELAY_SMOKE_TEST=60 "$APP" gui
echo "GUI start to first paint (no case): $(seconds_since "$t0") s"

echo "== 3. tiny training, then whole-volume prediction"
t0=$EPOCHREALTIME
bare "$APP" train --data "$tmp/site" --out "$tmp/model" --preset cpu-small \
    --set patches_per_volume=4 --set patch_size=24 --set max_epochs=1 --set threads=1
echo "tiny training: $(seconds_since "$t0") s"
t0=$EPOCHREALTIME
bare "$APP" predict "$CT" -o "$tmp/pred" --backend onnxruntime --model "$tmp/model/model.safetensors"
echo "prediction of $(basename "$CT"): $(seconds_since "$t0") s"
mask="$tmp/pred/pred_067.nii.gz"
[[ -s "$mask" ]] || { echo "smoke test: no mask written at $mask" >&2; ls -l "$tmp/pred" >&2; exit 1; }
echo "mask written: $(basename "$mask") ($(stat -c %s "$mask") bytes)"

echo "== 4. per-user install (desktop entry and icon) and start from the launcher path"
bare PREFIX="$tmp/home/.local" "$HERE/install.sh" "$(dirname "$APP")"
entry="$tmp/home/.local/share/applications/hemarelay.desktop"
exec_cmd="$(sed -n 's/^Exec=//p' "$entry")"
[[ -f "$tmp/home/.local/share/icons/hicolor/scalable/apps/hemarelay.svg" ]]
bare "${exec_cmd%% *}" --version
bare "$tmp/home/.local/bin/hemarelay" --version >/dev/null

echo "smoke test passed"
