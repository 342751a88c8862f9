//! `ferry plugin new`: each template, created outside the repository,
//! builds and passes `ferry plugin test` on its own sample; the Rust one
//! against the SDK as `cargo package` makes it (what crates.io would
//! serve). The Python and JavaScript ones need their toolchains
//! (`scripts/build-plugins.sh` installs them); without one, that language is
//! reported as skipped.

use crate::helpers::ferry;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `ferry plugin new NAME --lang LANG` into a fresh directory; returns it.
fn scaffold(base: &Path, name: &str, lang: &str) -> PathBuf {
    let dir = base.join(name);
    let out = ferry(&["plugin", "new", name, "--lang", lang, "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "plugin new {lang}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("README.md"));
    dir
}

/// `ferry plugin test` of `wasm` on the template's sample: the first order
/// mapped with its exact amount.
fn passes(wasm: &Path, dir: &Path, options: Option<&Path>) {
    let (wasm, sample) = (wasm.to_str().unwrap().to_string(), dir.join("sample.jsonl"));
    let mut a = vec!["plugin", "test", &wasm, "--input", sample.to_str().unwrap()];
    let opts;
    if let Some(o) = options {
        opts = o.to_str().unwrap().to_string();
        a.extend(["--options", &opts]);
    }
    let out = ferry(&a);
    assert_eq!(out.status.code(), Some(0), "{wasm}");
    let text = String::from_utf8_lossy(&out.stdout);
    // 3 × 33.33 + 1 × 0.01, exactly (a number, or text in the scripted languages).
    let exact = text.contains("\"amount\":100,") || text.contains("\"amount\":\"100.00\"");
    assert!(exact && text.contains("\"id\":\"10000001\""), "{text}");
}

fn skip_cancelled(dir: &Path) -> PathBuf {
    let file = dir.join("skip.json");
    std::fs::write(&file, r#"{"skip_statuses": ["Cancelled"]}"#).unwrap();
    file
}

#[test]
fn the_sdks_contract_is_the_repositorys() {
    let repo = std::fs::read_to_string(root().join("wit/mapping.wit")).unwrap();
    let sdk = std::fs::read_to_string(root().join("guest/sdk/wit/mapping.wit")).unwrap();
    assert_eq!(sdk, repo, "guest/sdk/wit/mapping.wit must be a copy of wit/mapping.wit (the SDK ships it when published)");
}

#[test]
fn a_declarative_plugin_is_options_and_a_sample() {
    let base = tempfile::tempdir().unwrap();
    let dir = scaffold(base.path(), "orders-as-data", "declarative");
    passes(Path::new(ferry_fixtures::DECLARATIVE), &dir, Some(&dir.join("options.toml")));
    let again = ferry(&["plugin", "new", "orders-as-data", "--lang", "declarative", "--dir", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "an existing directory is not overwritten");
    let bad = ferry(&["plugin", "new", "Bad Name"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NAME: expected lower-case letters"));
}

#[test]
fn a_rust_plugin_builds_against_the_packaged_sdk() {
    let base = tempfile::tempdir().unwrap();
    let target = root().join("target/plugin-new");
    // The SDK as `cargo package` makes it, unpacked: what crates.io would serve.
    let packaged = Command::new("cargo")
        .args(["package", "-p", "ferry-sdk", "--allow-dirty", "--no-verify", "--target-dir", target.to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(packaged.status.success(), "cargo package: {}", String::from_utf8_lossy(&packaged.stderr));
    let krate = std::fs::read_dir(target.join("package")).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "crate")).unwrap();
    assert!(Command::new("tar").args(["-xzf", krate.to_str().unwrap(), "-C", base.path().to_str().unwrap()]).status().unwrap().success());
    let sdk = base.path().join(krate.file_stem().unwrap());
    let dir = scaffold(base.path(), "my-orders", "rust");
    // The repository's lock, so the build uses the versions Ferry is tested with.
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let built = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path", dir.join("Cargo.toml").to_str().unwrap()])
        .args(["--config", &format!("patch.crates-io.ferry-sdk.path={:?}", sdk.to_str().unwrap())])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(built.status.success(), "cargo build: {}", String::from_utf8_lossy(&built.stderr));
    passes(&target.join("wasm32-wasip2/release/my_orders.wasm"), &dir, Some(&skip_cancelled(&dir)));
}

#[test]
fn python_and_javascript_plugins_build_with_their_toolchains() {
    let base = tempfile::tempdir().unwrap();
    let py = root().join("target/polyglot/venv/bin/componentize-py");
    if py.is_file() {
        let dir = scaffold(base.path(), "py-orders", "python");
        let wasm = dir.join("py_orders.wasm");
        let out = Command::new(&py).args(["-d", "wit", "-w", "mapper", "componentize", "app", "-o", "py_orders.wasm"]).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "componentize-py: {}", String::from_utf8_lossy(&out.stderr));
        passes(&wasm, &dir, Some(&skip_cancelled(&dir)));
    } else {
        eprintln!("SKIPPED: the python template: componentize-py is not installed (scripts/build-plugins.sh installs it)");
    }
    let js = root().join("guest/js-orders/node_modules/.bin/componentize-js");
    if js.is_file() {
        let dir = scaffold(base.path(), "js-orders", "js");
        let wasm = dir.join("js_orders.wasm");
        let out = Command::new(&js)
            .args(["--wit", "wit", "-n", "mapper", "-d", "stdio", "random", "clocks", "http", "fetch-event", "-o", "js_orders.wasm", "plugin.js"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "componentize-js: {}", String::from_utf8_lossy(&out.stderr));
        passes(&wasm, &dir, Some(&skip_cancelled(&dir)));
    } else {
        eprintln!("SKIPPED: the javascript template: componentize-js is not installed (scripts/build-plugins.sh installs it)");
    }
}
