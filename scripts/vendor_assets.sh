#!/usr/bin/env bash
# Install the pages' browser libraries from the npm registry (versions pinned by
# package-lock.json) and copy the files the pages serve into src/sokhoe/web/static/vendor/.
# Run by `make install`; nothing here is fetched at run time (hospital networks are isolated).
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
out=src/sokhoe/web/static/vendor
mkdir -p "$out"
cp node_modules/htmx.org/dist/htmx.min.js "$out/htmx.min.js"
cp node_modules/jsqr/dist/jsQR.js "$out/jsQR.js"
