#!/usr/bin/env bash
# Installs what the end-to-end tests drive: Debian's Chromium and the npm packages
# web-push-testing (a Web Push service emulator) and axe-core (the accessibility checks
# the browser tests inject). Idempotent and quiet when present.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Chromium (Debian package) for the browser tests..."
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  fi
fi

if [ ! -x "$here/node_modules/.bin/web-push-testing" ] || [ ! -f "$here/node_modules/axe-core/axe.min.js" ]; then
  echo "installing web-push-testing and axe-core (npm) for the push and browser tests..."
  npm install --prefix "$here" --no-audit --no-fund --silent >/dev/null
fi
