#!/usr/bin/env bash
# Installs everything the test suite needs and runs all of it: lint, types, tests.
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and Redis on 127.0.0.1:6379;
# see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Debian's Chromium for the browser test, Pango/HarfBuzz for WeasyPrint,
# redis-server for the tests that kill and restart a Redis of their own, Prometheus (and
# promtool) for the test that scrapes two portals and checks deploy/'s alert rules, nginx
# for the test of deploy/nginx/nginx.conf in front of two portals.
packages=(chromium libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
          redis-server prometheus nginx)
# npm for axe-core, which the browser tests inject into every page (WCAG checks).
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null

.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
