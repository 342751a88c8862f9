//! `ferry plugin new NAME --lang rust|declarative|python|js`: a working
//! plugin skeleton in a directory of its own (outside Ferry's repository):
//! the mapping, a sample input, and a README with the commands to build,
//! check and test it. The Rust one depends on the published `ferry-sdk` by
//! version; the Python and JavaScript ones carry Ferry's WIT contract.

use super::Exit;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A crate on the `ferry-sdk` (built to a component with cargo).
    Rust,
    /// Options for the shipped declarative plugin: a mapping as data.
    Declarative,
    /// componentize-py.
    Python,
    /// componentize-js.
    Js,
}

const SAMPLE: &str = include_str!("templates/sample.jsonl.tmpl");
const WIT: &str = include_str!("../../../wit/mapping.wit");

fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    let mut files = match lang {
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml.tmpl")),
            ("src/lib.rs", include_str!("templates/rust/lib.rs.tmpl")),
            ("README.md", include_str!("templates/rust/README.md.tmpl")),
        ],
        Lang::Declarative => {
            vec![("options.toml", include_str!("templates/declarative/options.toml.tmpl")), ("README.md", include_str!("templates/declarative/README.md.tmpl"))]
        }
        Lang::Python => vec![
            ("app.py", include_str!("templates/python/app.py.tmpl")),
            ("README.md", include_str!("templates/python/README.md.tmpl")),
            ("wit/mapping.wit", WIT),
        ],
        Lang::Js => vec![
            ("plugin.js", include_str!("templates/js/plugin.js.tmpl")),
            ("package.json", include_str!("templates/js/package.json.tmpl")),
            ("README.md", include_str!("templates/js/README.md.tmpl")),
            ("wit/mapping.wit", WIT),
        ],
    };
    files.push(("sample.jsonl", SAMPLE));
    files
}

/// Writes the skeleton of plugin `name` into `dir` (default `./NAME`).
pub fn new_plugin(name: &str, lang: Lang, dir: Option<PathBuf>) -> anyhow::Result<Exit> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !ok {
        bail!("NAME: expected lower-case letters, digits and `-`, starting with a letter (it names the plugin and its file), got `{name}`");
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{}: exists and is not empty; choose another NAME or --dir", dir.display());
    }
    let krate = name.replace('-', "_");
    for (path, text) in files(lang) {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = if path.ends_with(".wit") { text.to_string() } else { text.replace("{{name}}", name).replace("{{crate}}", &krate) };
        std::fs::write(&target, text).with_context(|| format!("cannot write {}", target.display()))?;
    }
    println!("created {} plugin `{name}` in {}", format!("{lang:?}").to_lowercase(), dir.display());
    println!("next: see {} for the commands to build, check and test it", Path::new(&dir).join("README.md").display());
    Ok(Exit::Ok)
}
