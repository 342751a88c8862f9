//! Builds the guests for wasm32-wasip2 with a nested `cargo build` whose
//! target dir lives under OUT_DIR (no lock fight with the outer build), as
//! wasmtime's test-programs artifacts do, and writes `gen.rs` with one path
//! constant per guest. Nothing built is ever committed.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// (constant name, package, artifact file stem)
const GUESTS: &[(&str, &str, &str)] = &[
    ("JUSHUITAN_ORDERS", "jushuitan-orders", "jushuitan_orders"),
    ("DECLARATIVE", "declarative", "declarative"),
    ("MISBEHAVE", "fixture-misbehave", "fixture_misbehave"),
];

/// Versions of the `versioned` fixture for the hot-swap tests.
const VERSIONS: &[(&str, &str)] = &[("VERSIONED_V1", "1.0.0"), ("VERSIONED_V2", "2.0.0"), ("VERSIONED_V3_BROKEN", "3.0.0-broken")];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir")).parent().expect("workspace root").to_path_buf();
    let target_dir = out.join("guests");
    let artifacts = out.join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    ensure_target();

    let mut generated = String::new();
    let packages: Vec<&str> = GUESTS.iter().map(|g| g.1).collect();
    cargo_build(&root, &target_dir, &packages, None);
    for (name, _, stem) in GUESTS {
        let dest = artifacts.join(format!("{stem}.wasm"));
        copy(&target_dir.join(TARGET).join("release").join(format!("{stem}.wasm")), &dest);
        generated += &format!("pub const {name}: &str = {:?};\n", dest.display().to_string());
    }
    for (name, version) in VERSIONS {
        cargo_build(&root, &target_dir, &["fixture-versioned"], Some(version));
        let dest = artifacts.join(format!("versioned-{version}.wasm"));
        copy(&target_dir.join(TARGET).join("release").join("fixture_versioned.wasm"), &dest);
        generated += &format!("pub const {name}: &str = {:?};\n", dest.display().to_string());
    }
    std::fs::write(out.join("gen.rs"), generated).expect("write gen.rs");

    for dir in ["guest", "wit"] {
        rerun_for(&root.join(dir));
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());
}

fn ensure_target() {
    let ok = Command::new("rustup").args(["target", "list", "--installed"]).output().map(|o| String::from_utf8_lossy(&o.stdout).contains(TARGET));
    if ok.unwrap_or(true) {
        return;
    }
    let status = Command::new("rustup").args(["target", "add", TARGET]).status();
    if !status.is_ok_and(|s| s.success()) {
        panic!("the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and retry");
    }
}

fn cargo_build(root: &Path, target_dir: &Path, packages: &[&str], version: Option<&str>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).arg("build").arg("--release").arg("--target").arg(TARGET).arg("--target-dir").arg(target_dir);
    for p in packages {
        cmd.arg("-p").arg(p);
    }
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "CARGO_BUILD_RUSTFLAGS"] {
        cmd.env_remove(var);
    }
    match version {
        Some(v) => cmd.env("FERRY_FIXTURE_VERSION", v),
        None => cmd.env_remove("FERRY_FIXTURE_VERSION"),
    };
    let status = cmd.status().expect("run cargo for the guests");
    assert!(status.success(), "building guests {packages:?} for {TARGET} failed");
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
}

fn rerun_for(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rerun_for(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
