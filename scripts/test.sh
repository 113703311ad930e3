#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs every test.
# System: Debian's chromium for the browser tests (playwright's own browser download cannot work here) and
# redis-server for the shared rate limiter's tests, and npm where the machine has none.
# Python: a .venv with requirements-dev.txt. Node: juxtaposejs, served to the browser in place of its CDN.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"  # the path the browser tests launch
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

(cd tests/e2e && npm install --no-audit --no-fund --no-package-lock --silent)

exec .venv/bin/python -m pytest "$@"
