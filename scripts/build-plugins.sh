#!/usr/bin/env bash
# Builds the Python and JavaScript plugins from source into target/polyglot/:
#   jushuitan_orders_py.wasm  guest/python-orders           (componentize-py, PyPI)
#   misbehave_py.wasm         guest/fixtures/python-misbehave
#   jushuitan_orders_js.wasm  guest/js-orders                (componentize-js + jco, npm)
#   misbehave_js.wasm         guest/fixtures/js-misbehave
# Installs the toolchains itself: componentize-py into target/polyglot/venv,
# componentize-js into guest/js-orders/node_modules (versions from package-lock.json).
# A toolchain that cannot be installed is not fatal, and never silent: the
# reason is printed and written to target/polyglot/<language>.skipped, which
# the golden test reports by name. A component is rebuilt only when one of its
# sources (or the WIT contract) is newer than it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/polyglot
mkdir -p "$out"
py_version=0.25.1

skip() { # language, reason
    echo "build-plugins: $1 plugins SKIPPED: $2" >&2
    echo "$2" >"$out/$1.skipped"
}

stale() { # output, sources...
    local output=$1
    shift
    [ ! -f "$output" ] || [ -n "$(find "$@" wit -newer "$output" -type f -print -quit)" ]
}

python_plugins() {
    rm -f "$out/python.skipped"
    local venv=$out/venv
    if ! command -v python3 >/dev/null; then
        skip python "python3 is not installed, so componentize-py cannot run"
        return
    fi
    if [ ! -x "$venv/bin/componentize-py" ]; then
        if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "componentize-py==$py_version"; }; then
            skip python "could not install componentize-py $py_version from PyPI"
            return
        fi
    fi
    local src name
    for pair in guest/python-orders:jushuitan_orders_py guest/fixtures/python-misbehave:misbehave_py; do
        src=${pair%%:*}
        name=${pair##*:}
        if stale "$out/$name.wasm" "$src"; then
            echo "build-plugins: $src -> $out/$name.wasm" >&2
            "$venv/bin/componentize-py" -d wit -w mapper componentize -p "$src" app -o "$out/$name.wasm.tmp" >/dev/null
            mv "$out/$name.wasm.tmp" "$out/$name.wasm"
        fi
    done
}

js_plugins() {
    rm -f "$out/javascript.skipped"
    local tool=guest/js-orders/node_modules/.bin/componentize-js
    if ! command -v npm >/dev/null; then
        skip javascript "node/npm is not installed, so componentize-js cannot run"
        return
    fi
    if [ ! -x "$tool" ]; then
        # `npm install --no-save` follows package-lock.json without rewriting
        # it. `npm ci` refuses this lock: jco lists optional per-platform
        # packages that npm 11 never writes into a lock.
        if ! npm install --prefix guest/js-orders --no-save --no-audit --no-fund --loglevel=error; then
            skip javascript "could not install componentize-js and jco from npm (guest/js-orders/package-lock.json)"
            return
        fi
    fi
    local src name
    for pair in guest/js-orders:jushuitan_orders_js guest/fixtures/js-misbehave:misbehave_js; do
        src=${pair%%:*}
        name=${pair##*:}
        if stale "$out/$name.wasm" "$src"/*.js; then
            echo "build-plugins: $src -> $out/$name.wasm" >&2
            "$tool" --wit wit -n mapper -d stdio random clocks http fetch-event -o "$out/$name.wasm.tmp" "$src/plugin.js" >/dev/null
            mv "$out/$name.wasm.tmp" "$out/$name.wasm"
        fi
    done
}

python_plugins
js_plugins
