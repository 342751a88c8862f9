#!/usr/bin/env bash
# The monitoring page end to end in headless Chromium (Debian's `chromium`,
# driven by playwright-core from npm) against `ferry serve` and both
# simulators on loopback. Screenshots go to target/browser-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=target/wasm32-wasip2/release/declarative.wasm
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser-test: installing Debian's chromium" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 || true
    chromium=$(command -v chromium || true)
fi
if [ -z "$chromium" ]; then
    echo "browser-test: SKIPPED: no chromium (install Debian's package \`chromium\`)" >&2
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "browser-test: SKIPPED: node/npm are not installed" >&2
    exit 0
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    (cd tests/browser && npm install --no-audit --no-fund --silent) || { echo "browser-test: SKIPPED: npm could not install playwright-core" >&2; exit 0; }
fi
[ -f "$plugin" ] || cargo build --release --target wasm32-wasip2 -p declarative

# shellcheck source=serve-fixture.sh
. scripts/serve-fixture.sh
# Orders with a single item fail the mapping (items[1] is required): dead letters to see.
options='{ fields = [ { to = "id", from = "o_id", format = "string" }, { to = "modified", from = "modified" }, { to = "amount", sum = { over = "items", multiply = ["qty", "sale_price"] }, format = "amount" }, { to = "second_sku", from = "items[1].sku_id", required = true } ] }'
start_serve browser-orders "$plugin" 600 4 "$options" --completion-delay 300ms
mkdir -p target/browser-artifacts
status=0
ARTIFACTS="$PWD/target/browser-artifacts" CHROMIUM="$chromium" node --test tests/browser/ || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- ferry serve log"; tail -40 "$WORK/serve.log"
fi
exit "$status"
