# Sourced by fuzz-api.sh and browser-test.sh: starts both simulators and a
# `ferry serve` on free loopback ports, stops them on exit.
#   start_serve NAME PLUGIN_WASM ORDERS PER_SECOND OPTIONS_TOML [TARGET_FLAGS...]
# Serves NAME and NAME-second (the same source, every 1h, its own state).
# Sets: SIM_URL, TARGET_URL, FERRY_URL, TOKEN (tenant "t1"), OTHER_TOKEN (tenant "t2"), WORK.
ferry=${FERRY_BIN:-target/debug/ferry}
WORK=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

start_serve() {
    local name=$1 plugin=$2 orders=$3 per_second=$4 options=$5
    shift 5
    [ -x "$ferry" ] || cargo build -p ferry
    local src tgt api start
    src=$(free_port); tgt=$(free_port); api=$(free_port)
    "$ferry" sim jushuitan --port "$src" --orders "$orders" --per-second "$per_second" --per-minute 100000 >"$WORK/sim.log" 2>&1 & pids+=($!)
    "$ferry" sim target --port "$tgt" "$@" >"$WORK/target.log" 2>&1 & pids+=($!)
    start=$(date -u -d '-4 days' '+%Y-%m-%dT%H:%M:%SZ')
    cat >"$WORK/p.toml" <<TOML
name = "$name"
tenant = "t1"
[source]
kind = "jushuitan"
base_url = "http://127.0.0.1:$src"
app_key = "ferry-demo-app"
app_secret = "ferry-demo-secret"
access_token = "ferry-demo-token"
start = "$start"
rate_limit = { per_second = $per_second, per_minute = 100000 }
metadata = '''{"api": "orders.out.simple.query", "request": [{"field": "status", "value": "Confirmed"}]}'''
[mapping]
plugin = "$PWD/$plugin"
options = $options
[target]
kind = "command"
base_url = "http://127.0.0.1:$tgt"
resource = "order-commands"
[state]
path = "state.db"
TOML
    # A second pipeline of the same tenant, on a schedule, with its own state:
    # panels of one pipeline must never show the other's.
    sed -e "s/^name = \"$name\"/name = \"$name-second\"/" -e 's/^path = "state.db"/path = "state-second.db"/' "$WORK/p.toml" >"$WORK/p2.toml"
    cat >"$WORK/serve.toml" <<TOML
listen = "127.0.0.1:$api"
[[pipelines]]
file = "p.toml"
[[pipelines]]
file = "p2.toml"
every = "1h"
[[tokens]]
token = "token-tenant-one-0123"
tenant = "t1"
[[tokens]]
token = "token-tenant-two-4567"
tenant = "t2"
TOML
    "$ferry" serve "$WORK/serve.toml" >"$WORK/serve.log" 2>&1 & pids+=($!)
    SIM_URL="http://127.0.0.1:$src"; TARGET_URL="http://127.0.0.1:$tgt"; FERRY_URL="http://127.0.0.1:$api"
    TOKEN=token-tenant-one-0123; OTHER_TOKEN=token-tenant-two-4567
    export SIM_URL TARGET_URL FERRY_URL TOKEN OTHER_TOKEN
    for _ in $(seq 1 150); do
        curl -fs "$FERRY_URL/readyz" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "ferry serve did not become ready:" >&2
    tail -20 "$WORK/serve.log" >&2
    return 1
}
