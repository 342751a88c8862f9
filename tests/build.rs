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
    ("HOSTILE", "fixture-hostile", "fixture_hostile"),
];

/// Versions of the `versioned` fixture for the hot-swap tests.
const VERSIONS: &[(&str, &str)] = &[("VERSIONED_V1", "1.0.0"), ("VERSIONED_V2", "2.0.0"), ("VERSIONED_V3_BROKEN", "3.0.0-broken")];

/// Flavours of the `hostile` fixture that attack `describe`.
const HOSTILE_FLAVOURS: &[(&str, &str)] = &[("HOSTILE_HUGE_DESCRIBE", "huge-describe"), ("HOSTILE_SLEEP_DESCRIBE", "sleep-describe")];

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
    for (name, flavour) in HOSTILE_FLAVOURS {
        cargo_build(&root, &target_dir, &["fixture-hostile"], Some(flavour));
        let dest = artifacts.join(format!("hostile-{flavour}.wasm"));
        copy(&target_dir.join(TARGET).join("release").join("fixture_hostile.wasm"), &dest);
        generated += &format!("pub const {name}: &str = {:?};\n", dest.display().to_string());
    }
    let bomb = artifacts.join("compile-bomb.wasm");
    std::fs::write(&bomb, compile_bomb(1_000_000)).expect("write the compile bomb");
    generated += &format!("pub const COMPILE_BOMB: &str = {:?};\n", bomb.display().to_string());
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
    // A plain build, whatever the outer one is (`cargo clippy` wraps rustc;
    // the guests are linted as workspace members on their own).
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
    ] {
        cmd.env_remove(var);
    }
    // Every crate of a guest in one codegen unit, as `scripts/release.sh`
    // builds the shipped plugins: 5% faster mapping in wasm.
    cmd.env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
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

/// A hostile component that is cheap to send and dear to compile: one core
/// function of `depth` nested empty blocks (3 bytes each, so 3 MB for a
/// million), which the compiler turns into a million basic blocks. It is
/// valid WebAssembly; the host must refuse it by its compile limits.
fn compile_bomb(depth: usize) -> Vec<u8> {
    let mut body = vec![0x00]; // no locals
    body.extend(std::iter::repeat_n([0x02, 0x40], depth).flatten()); // block (empty type)
    body.extend(std::iter::repeat_n(0x0b, depth + 1)); // end of each block, then of the function
    let mut code = vec![0x01]; // one body
    leb(&mut code, body.len());
    code.extend(body);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(&mut module, 0x01, &[0x01, 0x60, 0x00, 0x00]); // types: () -> ()
    section(&mut module, 0x03, &[0x01, 0x00]); // functions: one of type 0
    section(&mut module, 0x0a, &code);
    let mut component = b"\0asm\x0d\0\x01\0".to_vec();
    section(&mut component, 0x01, &module); // a core module section
    component
}

fn section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    out.push(id);
    leb(out, content.len());
    out.extend_from_slice(content);
}

fn leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
