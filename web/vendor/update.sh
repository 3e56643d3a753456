#!/usr/bin/env bash
# Refresh a vendored npm package of the PWA: bash web/vendor/update.sh [chartist version]
set -euo pipefail
version="${1:-1.5.0}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "chartist@$version" --silent >/dev/null && tar xzf "chartist-$version.tgz")
cp "$work/package/dist/index.js" "$here/chartist/chartist.js"
cp "$work/package/dist/index.css" "$here/chartist/chartist.css"
cp "$work/package/LICENSE-MIT" "$here/chartist/LICENSE-MIT"
sed -i '/sourceMappingURL/d' "$here/chartist/chartist.js" "$here/chartist/chartist.css"
sed -i "s/^# Chartist .*, vendored/# Chartist $version, vendored/" "$here/chartist/README.md"
echo "chartist $version vendored under web/vendor/chartist/"
