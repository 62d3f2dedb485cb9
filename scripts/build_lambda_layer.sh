#!/usr/bin/env bash
# Builds the launcher Lambdas' dependency layer (pydantic + pydantic-settings, which app/contracts and
# app/launcher import and the python3.12 Lambda runtime lacks) into build/lambda-layer/python, from the versions and
# hashes of requirements.lock (cut by `python -m scripts.lock --layer`; the lock's hashes cover every platform's
# wheel, so the python3.12 manylinux wheels are hash-checked too). CDK packages that folder as a Lambda layer
# asset: synth stays offline and needs no Docker. Idempotent: skips the install when the requirements are unchanged.
# Run by `make setup`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build/lambda-layer"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
STAMP="$OUT/requirements.txt"

WANTED="$(cd "$ROOT" && "$PY" -m scripts.lock --layer)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANTED" ]]; then
  touch "$STAMP"  # up to date: newer than the lock for make
  exit 0
fi
rm -rf "$OUT"
mkdir -p "$OUT/python"
"$PY" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps --require-hashes \
  --target "$OUT/python" --platform manylinux2014_x86_64 --implementation cp --python-version 3.12 \
  --only-binary=:all: --no-compile -r <(echo "$WANTED") \
  2> >(grep -v -e '^WARNING: Location' >&2)
# pip writes metadata with install-time paths and timestamps in RECORD files; drop what the runtime does not need
# so the asset hash depends only on the pins.
find "$OUT/python" -name 'RECORD' -delete
find "$OUT/python" -name 'INSTALLER' -delete
rm -rf "$OUT/python/bin"
echo "$WANTED" > "$STAMP"
