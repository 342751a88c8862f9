#!/usr/bin/env bash
# Fuzzes `ferry serve` from its own OpenAPI document with schemathesis (PyPI):
# every operation, random and edge-case inputs, authenticated as a tenant.
# Fails on any 5xx or any response that does not match the schema.
# Everything listens on 127.0.0.1 and stops by itself (time budget below).
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=target/wasm32-wasip2/release/jushuitan_orders.wasm
venv=target/schemathesis-venv
version=4.32.5

if ! command -v python3 >/dev/null; then
    echo "fuzz-api: SKIPPED: python3 is not installed, so schemathesis cannot run" >&2
    exit 0
fi
if [ ! -x "$venv/bin/schemathesis" ]; then
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "schemathesis==$version"; }; then
        echo "fuzz-api: SKIPPED: could not install schemathesis $version from PyPI" >&2
        exit 0
    fi
fi
[ -f "$plugin" ] || cargo build --release --target wasm32-wasip2 -p jushuitan-orders

# shellcheck source=serve-fixture.sh
. scripts/serve-fixture.sh
start_serve fuzz-orders "$plugin" 200 50 "{}"

status=0
"$venv/bin/schemathesis" run "$FERRY_URL/openapi.json" \
    -H "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,response_schema_conformance \
    --max-time 60 --workers 2 --no-color || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- ferry serve log"; tail -50 "$WORK/serve.log"
fi
exit "$status"
