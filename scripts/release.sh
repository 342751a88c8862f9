#!/usr/bin/env bash
# Builds a release archive: the `ferry` binary, the shipped plugins, the
# examples (pointing at the plugins beside them) and the docs, with a
# README, as target/release-bundle/ferry-VERSION-TARGET.tar.gz.
#
#   scripts/release.sh                 build everything in release mode
#   scripts/release.sh --bin PATH --plugins DIR --out DIR
#                                      bundle already-built artefacts (the test does)
set -euo pipefail
cd "$(dirname "$0")/.."

bin="" plugins="" out="target/release-bundle"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --plugins) plugins="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "release.sh: unknown argument $1 (expected --bin, --plugins, --out)" >&2; exit 2 ;;
    esac
done

if [ -z "$bin" ]; then
    rustup target add wasm32-wasip2 >/dev/null
    cargo build --release --locked -p ferry
    # One codegen unit per crate: 5% faster mapping (BENCHMARKS.md, section 1).
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 cargo build --release --locked --target wasm32-wasip2 -p jushuitan-orders -p declarative
    bin=target/release/ferry
    plugins=target/wasm32-wasip2/release
fi
[ -x "$bin" ] || { echo "release.sh: no ferry binary at $bin" >&2; exit 2; }
for p in jushuitan_orders declarative; do
    [ -f "$plugins/$p.wasm" ] || { echo "release.sh: no $p.wasm in $plugins" >&2; exit 2; }
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
target=$(rustc -vV | sed -n 's/^host: //p')
name="ferry-$version-$target"
stage="$out/$name"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/plugins" "$stage/examples" "$stage/docs"
cp "$bin" "$stage/bin/ferry"
cp "$plugins/jushuitan_orders.wasm" "$plugins/declarative.wasm" "$stage/plugins/"
# Pipelines point at the archive's plugins; their options and samples go as they are.
for f in examples/*; do
    if [ -d "$f" ]; then
        cp -r "$f" "$stage/examples/"
    else
        sed -e 's#\.\./target/wasm32-wasip2/release/#../plugins/#' "$f" > "$stage/examples/$(basename "$f")"
    fi
done
cp docs/*.md "$stage/docs/"
cp README.md "$stage/docs/README.project.md"
cat > "$stage/README.md" <<README
# Ferry $version ($target)

Syncs the Jushuitan (聚水潭) open API into another system through sandboxed
WebAssembly mapping plugins, without losing or doubling a record.

    bin/ferry demo                    # both simulators, a sync, checked against ground truth
    bin/ferry --help                  # every command
    bin/ferry completions bash > ~/.local/share/bash-completion/completions/ferry

- \`plugins/\`: the shipped mappings (\`jushuitan_orders.wasm\`, \`declarative.wasm\`).
- \`examples/\`: pipeline files that use them (\`bin/ferry validate examples/jushuitan-to-command.toml\`
  after setting the \`\${JST_...}\` variables they name).
- \`docs/\`: plugins, access tokens, and the project's README.

\`bin/ferry --version\` names the commit this was built from.
README
tar -C "$out" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
