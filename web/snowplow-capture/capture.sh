#!/usr/bin/env bash
# Regenerate tests/fixtures/snowplow/*.json: what the real Snowplow browser tracker sends from headless Chromium.
# Needs node + npm and Debian's chromium (CHROMIUM=/path/to/chromium to use another binary).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
exec node capture.mjs "$@"
