#!/usr/bin/env bash
# Fuzzes `ferry serve` from its own OpenAPI document with schemathesis (PyPI):
# every operation, random and edge-case inputs, authenticated as a tenant.
# Fails on any 5xx or any response that does not match the schema.
# Everything listens on 127.0.0.1 and stops by itself (time budget below).
set -euo pipefail
cd "$(dirname "$0")/.."
ferry=${FERRY_BIN:-target/debug/ferry}
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
[ -x "$ferry" ] || cargo build -p ferry
[ -f "$plugin" ] || cargo build --release --target wasm32-wasip2 -p jushuitan-orders

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
src=$(port); tgt=$(port); api=$(port)
"$ferry" sim jushuitan --port "$src" --orders 200 --per-second 50 --per-minute 100000 >"$work/sim.log" 2>&1 & pids+=($!)
"$ferry" sim target --port "$tgt" >"$work/target.log" 2>&1 & pids+=($!)
start=$(date -u -d '-4 days' '+%Y-%m-%dT%H:%M:%SZ')
cat >"$work/p.toml" <<TOML
name = "fuzz-orders"
tenant = "fuzz"
[source]
kind = "jushuitan"
base_url = "http://127.0.0.1:$src"
app_key = "ferry-demo-app"
app_secret = "ferry-demo-secret"
access_token = "ferry-demo-token"
start = "$start"
rate_limit = { per_second = 50, per_minute = 100000 }
metadata = '''{"api": "orders.out.simple.query", "request": [{"field": "status", "value": "Confirmed"}]}'''
[mapping]
plugin = "$PWD/$plugin"
[target]
kind = "command"
base_url = "http://127.0.0.1:$tgt"
resource = "order-commands"
[state]
path = "state.db"
TOML
cat >"$work/serve.toml" <<TOML
listen = "127.0.0.1:$api"
[[pipelines]]
file = "p.toml"
every = "30s"
[[tokens]]
token = "fuzz-token-0123456789"
tenant = "fuzz"
TOML
"$ferry" serve "$work/serve.toml" >"$work/serve.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$api/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done

status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$api/openapi.json" \
    -H "Authorization: Bearer fuzz-token-0123456789" \
    --checks not_a_server_error,response_schema_conformance \
    --max-time 60 --workers 2 --no-color || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- ferry serve log"; tail -50 "$work/serve.log"
fi
exit "$status"
