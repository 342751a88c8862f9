#!/usr/bin/env bash
# The idle cost of one `ferry serve` holding N pipelines (BENCHMARKS.md,
# section 9): RSS (and how much of it is the heap), threads, and CPU over
# 10 s of idling, read from /proc. Usage:
#   scripts/idle-cost.sh N            # N pipelines, never run
#   EVERY=1h scripts/idle-cost.sh N   # scheduled: each runs once at start
# Each pipeline has its own SQLite state and points at an unreachable
# source (127.0.0.1:9), so a scheduled run fails fast and then idles.
# WAIT (default 30 s) is how long after start the reading begins.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: scripts/idle-cost.sh N}
bin=${FERRY_BIN:-target/release/ferry}
plugin=$PWD/target/wasm32-wasip2/release/jushuitan_orders.wasm
[ -x "$bin" ] || cargo build --release -p ferry
[ -f "$plugin" ] || cargo build --release --target wasm32-wasip2 -p jushuitan-orders
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
printf 'listen = "127.0.0.1:0"\n[[tokens]]\ntoken = "idle-cost-token"\ntenant = "t"\n' > "$work/serve.toml"
for i in $(seq 1 "$n"); do
    cat > "$work/p$i.toml" <<T
name = "p$i"
tenant = "t"
[source]
kind = "jushuitan"
base_url = "http://127.0.0.1:9"
app_key = "app$i"
app_secret = "s"
access_token = "t"
start = "2026-01-01 00:00:00"
max_attempts = 1
metadata = '''{"api": "orders.out.simple.query"}'''
[mapping]
plugin = "$plugin"
[target]
kind = "command"
base_url = "http://127.0.0.1:9"
resource = "r"
[state]
path = "$work/p$i.db"
T
    printf '[[pipelines]]\nfile = "p%s.toml"\n' "$i" >> "$work/serve.toml"
    [ -z "${EVERY:-}" ] || printf 'every = "%s"\n' "$EVERY" >> "$work/serve.toml"
done
"$bin" serve "$work/serve.toml" > "$work/log" 2>&1 &
pid=$!
sleep "${WAIT:-30}"
kill -0 "$pid" 2>/dev/null || { echo "ferry serve stopped:"; tail -5 "$work/log"; exit 1; }
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
heap=$(awk '/\[heap\]/ {h=1; next} /^[0-9a-f]+-/ {h=0} h && /^Rss:/ {print $2}' "/proc/$pid/smaps")
threads=$(awk '/^Threads/ {print $2}' "/proc/$pid/status")
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat"); sleep 10; t2=$(awk '{print $14 + $15}' "/proc/$pid/stat")
ticks=$(getconf CLK_TCK)
echo "pipelines=$n scheduled=${EVERY:-no} rss_mb=$((rss / 1024)) heap_mb=$((${heap:-0} / 1024)) threads=$threads idle_cpu_percent_of_a_core=$(awk -v d=$((t2 - t1)) -v t="$ticks" 'BEGIN {printf "%.2f", d / t / 10 * 100}')"
