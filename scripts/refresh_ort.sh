#!/usr/bin/env bash
# Refresh the vendored onnxruntime-web files in kmnist_live/ort/ from the npm package (WASM build only).
# Usage: scripts/refresh_ort.sh [VERSION]   (default: the version in kmnist_live/ort/VERSION)
# The app serves these files itself (kmnist_live.routes, cached immutable), so the Draw page runs offline.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=kmnist_live/ort
version="${1:-$(sed -n 's/^onnxruntime-web //p' "$dest/VERSION")}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "onnxruntime-web@$version" >/dev/null && tar xzf onnxruntime-web-"$version".tgz)
pkg="$work/package"
files=(ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)
mkdir -p "$dest"
for f in "${files[@]}"; do cp "$pkg/dist/$f" "$dest/$f"; done
# The npm package carries no licence file; onnxruntime (same repository, same MIT licence) is in the venv.
licence="$(python -c 'import onnxruntime, pathlib; print(pathlib.Path(onnxruntime.__file__).parent / "LICENSE")')"
cp "$licence" "$dest/LICENSE"
{
  echo "onnxruntime-web $version"
  echo "from: npm package onnxruntime-web@$version, dist/ (WASM build, SIMD; run single-threaded)"
  echo "licence: MIT (LICENSE, Microsoft Corporation)"
  (cd "$dest" && sha256sum "${files[@]}")
} > "$dest/VERSION"
echo "kmnist_live/ort: onnxruntime-web $version ($(du -sh "$dest" | cut -f1))"
