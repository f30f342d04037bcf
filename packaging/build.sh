#!/usr/bin/env bash
# Build the one-folder application into packaging/dist/hemarelay/ and smoke-test it.
#   packaging/build.sh            build + smoke test
#   packaging/build.sh --no-test  build only
# Uses the project's .venv (PYTHON=... to use another interpreter with the
# project and its [gui] extra installed); installs PyInstaller there if missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"

if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "installing PyInstaller into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    "$PYTHON" -m pip install --quiet pyinstaller
fi

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$HERE/dist" --workpath "$HERE/build" "$HERE/hemarelay.spec"
# torch ships its libraries with symbols (~100 MB); strip those only: PyInstaller's
# strip=True also rewrites the auditwheel-patched numpy/scipy libraries and breaks them.
strip --strip-unneeded "$HERE"/dist/hemarelay/_internal/torch/lib/libtorch*.so "$HERE"/dist/hemarelay/_internal/torch/lib/libc10.so
end=$(date +%s)

echo "build time: $((end - start)) s"
echo "bundle size: $(du -sh "$HERE/dist/hemarelay" | cut -f1)  ($HERE/dist/hemarelay)"
echo "largest parts:"
du -sh "$HERE/dist/hemarelay/_internal/"* | sort -h | tail -8

if [[ "${1:-}" != "--no-test" ]]; then
    "$HERE/smoke_test.sh"
fi
