#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs every test.
# System: Debian's chromium for the browser tests (playwright's own browser download cannot work here).
# Python: a .venv with requirements-dev.txt. Node: juxtaposejs, served to the browser in place of its CDN.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

(cd tests/e2e && npm install --no-audit --no-fund --no-package-lock --silent)

exec .venv/bin/python -m pytest "$@"
