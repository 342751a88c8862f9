#!/usr/bin/env bash
# PostgreSQL for the state-store conformance suite and the cluster tests:
# makes sure the machine's server answers on 127.0.0.1:5432 (starting it,
# or installing Debian's when there is none), then drops test databases
# that an interrupted earlier run left behind. Each test makes its own
# database (ferry_*) and drops it at the end.
set -euo pipefail
url="${FERRY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"

ready() { command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; }

if ! ready; then
    echo "postgres: not answering on 127.0.0.1:5432; starting it" >&2
    if ! command -v pg_ctlcluster >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    service postgresql start >/dev/null 2>&1 || pg_ctlcluster "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    for _ in $(seq 30); do ready && break; sleep 1; done
    ready || { echo "postgres: the conformance and cluster tests need PostgreSQL on 127.0.0.1:5432 and it would not start" >&2; exit 1; }
fi

stale=$(psql "$url" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'ferry\_%'" 2>/dev/null || true)
for db in $stale; do
    psql "$url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
done
echo "postgres: ready at 127.0.0.1:5432" >&2
