#!/usr/bin/env bash
# Make sure Debian's Chromium is present for the browser tests. Installs it when missing and we are root;
# otherwise says why it could not. The browser tests themselves decide: skip with a visible reason locally,
# fail under CI=true.
set -u
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found: installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; then
    echo "chromium installed: $(chromium --version 2>/dev/null)"
    exit 0
  fi
  echo "could not install chromium with apt-get; browser tests will not run" >&2
  exit 0
fi
echo "chromium not found and cannot be installed here (not root or no apt-get); browser tests will not run" >&2
exit 0
