#!/usr/bin/env bash
# Opens an HTML report of `concur tour --report` (or `concur bench --report`) in
# headless Chromium and saves a screenshot beside it, as evidence that the page renders.
#
#   scripts/report-screenshot.sh PAGE.html [OUT.png]
#
# Installs Debian's `chromium` when it is missing and this runs as root. The test suite
# calls it on the report its tour test leaves in target/tmp/tour-report/.
set -euo pipefail
page=${1:?usage: report-screenshot.sh PAGE.html [OUT.png]}
out=${2:-${page%.html}.png}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ] && [ "$(id -u)" = 0 ]; then
    echo "chromium not found: installing Debian's chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    browser=$(command -v chromium || true)
fi
if [ -z "$browser" ]; then
    echo "chromium is missing and could not be installed: no screenshot" >&2
    exit 1
fi
abs=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
# --no-sandbox: CI runs as root; the page is our own and loads nothing from the network.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$profile" --window-size=1000,4200 --screenshot="$out" \
    "file://$abs" >/dev/null 2>&1
if [ ! -s "$out" ]; then
    echo "chromium wrote no screenshot of $page" >&2
    exit 1
fi
echo "screenshot of $page: $out ($(stat -c %s "$out") bytes)"
