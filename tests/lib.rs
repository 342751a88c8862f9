//! Paths of the guests built from source by `build.rs`: the shipped plugins
//! and the misbehaving / versioned fixtures the tests use.

include!(concat!(env!("OUT_DIR"), "/gen.rs"));

/// A Python or JavaScript plugin built by `scripts/build-plugins.sh` into
/// `target/polyglot/` (`./dev test` runs it first): `Ok(path)`, or
/// `Err(reason)` when the script recorded that the language's toolchain
/// could not be installed. Panics, naming the script, when it has not run.
pub fn polyglot(file: &str, language: &str) -> Result<String, String> {
    let dir = polyglot_dir();
    let path = dir.join(file);
    if let Ok(reason) = std::fs::read_to_string(dir.join(format!("{language}.skipped"))) {
        return Err(reason.trim().to_string());
    }
    if path.is_file() {
        return Ok(path.display().to_string());
    }
    panic!("{} is missing: run scripts/build-plugins.sh (./dev test runs it before the tests)", path.display());
}

/// Where `scripts/build-plugins.sh` puts its components (`$FERRY_POLYGLOT_DIR`
/// overrides).
pub fn polyglot_dir() -> std::path::PathBuf {
    std::env::var("FERRY_POLYGLOT_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/polyglot").to_string()).into()
}
