#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine, then runs them on two Pythons:
#   - Python 3.12, Streamlit Community Cloud's default: the whole suite, browser tests included, in .venv-3.12;
#   - Python 3.13, where requirements.txt installs without the subject model's wheel (the offline engine cuts
#     out with GrabCut): the unit and AppTest suites (`tests --ignore=tests/e2e`), in .venv-3.13. Tests marked
#     `needs_subject_model` skip there; everywhere else under CI a missing model fails them (tests/conftest.py).
# Each venv gets requirements-dev.txt. The app's own venv, .venv (the README's first command), is not touched.
# The exit status is non-zero when either part fails; the last lines say which Python each part ran on.
#
# With arguments (`bash scripts/test.sh tests/test_offline.py -k floor`), they go to pytest on Python 3.12 only,
# so one file runs quickly; the 3.13 part runs only without arguments.
#
# Interpreters: the newest 3.12.x / 3.13.x under `pyenv root`, else python3.12 / python3.13 on PATH. Under CI
# (`CI` set) a missing one fails the run with a sentence. Elsewhere 3.12 falls back to python3 (with a warning)
# and a missing 3.13 skips that part (with a warning), since python3 has already run the same tests.
#
# System: Debian's chromium for the browser tests (playwright's own browser download cannot work here) and
# redis-server for the shared rate limiter's tests, and npm where the machine has none.
# Node: juxtaposejs and axe-core, served to the browser in place of their CDN.
set -euo pipefail
cd "$(dirname "$0")/.."

ON_CI=""
[ -n "$(printf '%s' "${CI:-}" | tr -d '[:space:]')" ] && ON_CI=1

missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"  # the path the browser tests launch
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

(cd tests/e2e && npm install --no-audit --no-fund --no-package-lock --silent)

# The newest interpreter of one minor version ("3.12"): pyenv's first, then one on PATH; nothing if none.
find_python() {
  local minor=$1 root dir found=()
  root=$(pyenv root 2>/dev/null || true)
  [ -n "$root" ] || root=${PYENV_ROOT:-$HOME/.pyenv}
  for dir in "$root/versions/$minor".*; do  # plain releases only (3.12.7, not 3.12-dev or 3.13.0t)
    [[ ${dir##*/} =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] && [ -x "$dir/bin/python" ] && found+=("${dir##*/}")
  done
  if [ ${#found[@]} -gt 0 ]; then
    echo "$root/versions/$(printf '%s\n' "${found[@]}" | sort -V | tail -n 1)/bin/python"
  elif command -v "python$minor" >/dev/null 2>&1; then
    command -v "python$minor"
  fi
  return 0
}

version_of() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'; }

# A venv for interpreter $2 at $1 with requirements-dev.txt, made again when it was made by another version.
make_venv() {
  local venv=$1 python=$2 want
  want=$(version_of "$python")
  if [ ! -x "$venv/bin/python" ] || [ "$(version_of "$venv/bin/python" 2>/dev/null || true)" != "$want" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
}

py312=$(find_python 3.12)
if [ -z "$py312" ]; then
  if [ -n "$ON_CI" ]; then
    echo "scripts/test.sh: no Python 3.12 found (looked under $(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")/versions and for python3.12 on PATH); CI runs the whole suite on 3.12, so this fails." >&2
    exit 1
  fi
  py312=$(command -v python3)
  echo "scripts/test.sh: no Python 3.12 found; using $(version_of "$py312") ($py312) in its place." >&2
fi
py313=""
if [ $# -eq 0 ]; then
  py313=$(find_python 3.13)
  if [ -z "$py313" ]; then
    if [ -n "$ON_CI" ]; then
      echo "scripts/test.sh: no Python 3.13 found (looked under $(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")/versions and for python3.13 on PATH); CI runs the unit and AppTest suites on 3.13, so this fails." >&2
      exit 1
    fi
    echo "scripts/test.sh: no Python 3.13 found; its part (unit and AppTest suites without the subject model) is skipped." >&2
  fi
fi

v312=$(version_of "$py312")
venv312=".venv-${v312%.*}"
if [ -n "$py313" ] && [ "$(version_of "$py313")" = "$v312" ]; then
  py313=""  # python3 in place of 3.12 is this 3.13 already: the whole suite covers its part
fi
make_venv "$venv312" "$py312"
summary=()
status=0

echo "== Python $v312 ($py312): pytest ${*:-(the whole suite)}"
if "$venv312/bin/python" -m pytest "$@"; then
  summary+=("Python $v312: ${*:-the whole suite} passed")
else
  rc=$?; status=$rc
  summary+=("Python $v312: ${*:-the whole suite} FAILED (pytest exit $rc)")
fi

if [ -n "$py313" ]; then
  v313=$(version_of "$py313")
  make_venv ".venv-${v313%.*}" "$py313"
  echo "== Python $v313 ($py313): pytest tests --ignore=tests/e2e (unit and AppTest suites)"
  if ".venv-${v313%.*}/bin/python" -m pytest tests --ignore=tests/e2e; then
    summary+=("Python $v313: the unit and AppTest suites passed")
  else
    rc=$?; [ "$status" -ne 0 ] || status=$rc
    summary+=("Python $v313: the unit and AppTest suites FAILED (pytest exit $rc)")
  fi
fi

echo "== Summary"
printf '   %s\n' "${summary[@]}"
exit "$status"
