#!/usr/bin/env bash
# CI: execute examples/notebook.ipynb with nbclient in a Python venv (packages from PyPI) and
# fail if any cell fails. Needs python3 (>= 3.9) with the venv module, and network for the
# first pip install. The venv is kept between runs (TRICHOMETER_CI_VENV, default
# <cargo target dir>/ci-venv) and rebuilt when the pinned requirements change.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

REQUIREMENTS=(
  "pandas>=2,<3"
  "matplotlib>=3.7,<4"
  "nbclient>=0.10,<1"
  "nbformat>=5.9,<6"
  "ipykernel>=6.25,<7"
)
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$PWD/$TARGET_DIR" ;; esac
VENV="${TRICHOMETER_CI_VENV:-$TARGET_DIR/ci-venv}"
CELL_TIMEOUT="${TRICHOMETER_CELL_TIMEOUT:-600}"
SAMPLES="${TRICHOMETER_SAMPLES:-$PWD/samples}"

if [ ! -d "$SAMPLES" ]; then
  echo "notebook: no samples folder at $SAMPLES" >&2
  exit 1
fi

echo "== notebook: python venv at $VENV"
WANT="$(printf '%s\n' "${REQUIREMENTS[@]}")"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.trichometer-requirements" 2>/dev/null)" != "$WANT" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
  printf '%s\n' "$WANT" > "$VENV/.trichometer-requirements"
fi

echo "== notebook: cargo build --release"
cargo build --release --locked --quiet
export TRICHOMETER_BIN="$TARGET_DIR/release/trichometer"
export TRICHOMETER_SAMPLES="$SAMPLES"
export MPLBACKEND=Agg
EXECUTED="$TARGET_DIR/notebook.executed.ipynb"

echo "== notebook: executing examples/notebook.ipynb (timeout ${CELL_TIMEOUT}s per cell)"
"$VENV/bin/python" - "examples/notebook.ipynb" "$EXECUTED" "$CELL_TIMEOUT" <<'PY'
import sys

import nbformat
from nbclient import NotebookClient

src, dst, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(src, as_version=4)
client = NotebookClient(
    nb,
    timeout=timeout,
    kernel_name="python3",
    allow_errors=False,
    resources={"metadata": {"path": "examples"}},
)
try:
    client.execute()
except Exception as e:  # CellExecutionError, timeouts, a dead kernel: all fail CI
    print(f"notebook: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
    nbformat.write(nb, dst)
    print(f"notebook: partial output in {dst}", file=sys.stderr)
    sys.exit(1)
nbformat.write(nb, dst)
errors = [
    o
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.get("outputs", [])
    if o.get("output_type") == "error"
]
if errors:
    print(f"notebook: FAILED: {len(errors)} error output(s)", file=sys.stderr)
    sys.exit(1)
print(f"notebook: {sum(c.cell_type == 'code' for c in nb.cells)} code cells ran; output in {dst}")
PY
echo "== notebook passed"
