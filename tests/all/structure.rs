//! The structure the team keeps, checked on every test run: no file under
//! `host/src` over 20 KB, no SQL outside the state store (`host/src/state`;
//! the HTTP layer and the cluster call the store), and no import cycle
//! between modules. A module may use its ancestors (`super::`)
//! and its descendants; between any other two modules imports go one way.
//! Paths are read from the source text (`crate::`, `super::`, `self::`),
//! test modules left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_BYTES: u64 = 20 * 1024;

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&src_root(), &mut out);
    out.sort();
    out
}

fn src_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `api/sync/mod.rs` -> ["api", "sync"]; `lib.rs` -> [].
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src_root()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    parts
}

/// The text before the first `#[cfg(test)]` (test modules come last),
/// without `//` comments (a doc link is not an import).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines().map(|l| l.trim_start()).filter(|l| !l.starts_with("//")).collect::<Vec<_>>().join("\n")
}

#[test]
fn no_file_is_over_20_kb() {
    let big: Vec<String> = sources()
        .into_iter()
        .filter_map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (len > MAX_FILE_BYTES).then(|| format!("{} ({len} bytes)", p.display()))
        })
        .collect();
    assert!(big.is_empty(), "files over {MAX_FILE_BYTES} bytes: {big:?}");
}

#[test]
fn sql_lives_in_the_state_store_only() {
    let verbs = ["\"SELECT ", "\"INSERT ", "\"UPDATE ", "\"DELETE ", "\"CREATE ", "\"ALTER "];
    let mut found = Vec::new();
    for path in sources().into_iter().filter(|p| module_of(p).first().is_none_or(|m| m != "state")) {
        let text = code(&path);
        found.extend(verbs.iter().filter(|v| text.contains(**v)).map(|v| format!("{}: {}", path.display(), v.trim_start_matches('"'))));
    }
    assert!(found.is_empty(), "SQL belongs in the state store (host/src/state): {found:?}");
}

#[test]
fn modules_import_one_way() {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|p| module_of(p)).collect();
    // Edges between the two children of the modules' nearest common ancestor.
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for path in &files {
        let me = module_of(path);
        let text = code(path);
        for path in paths(&text) {
            let Some(to) = resolve(&me, &path, &modules) else { continue };
            let common = me.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == me.len() || common == to.len() {
                continue; // an ancestor or a descendant
            }
            edges.entry(me[..=common].to_vec()).or_default().insert(to[..=common].to_vec());
        }
    }
    let cycles = cycles(&edges);
    assert!(cycles.is_empty(), "modules that import each other: {cycles:?}");
}

/// `api/` is the HTTP layer over the command engine: the engine never
/// imports it, and it keeps no command state or executor of its own (no
/// locks, queues or executors: those are the engine's).
#[test]
fn the_api_is_http_only() {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|p| module_of(p)).collect();
    let mut found = Vec::new();
    for path in &files {
        let me = module_of(path);
        let text = code(path);
        match me.first().map(String::as_str) {
            Some("commands") => {
                let into_api = paths(&text).into_iter().filter_map(|p| resolve(&me, &p, &modules)).any(|to| to.first().is_some_and(|m| m == "api"));
                if into_api {
                    found.push(format!("{}: imports api", path.display()));
                }
            }
            Some("api") => {
                for held in ["Mutex<", "RwLock<", "Notify", "JoinSet::new", "VecDeque"] {
                    if text.contains(held) {
                        found.push(format!("{}: {held} (command state and executors belong in commands/)", path.display()));
                    }
                }
            }
            _ => {}
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// The simulators are a crate of their own (`ferry-sim`): the library
/// never uses them; only the binary does, for `ferry demo` and `ferry sim`.
#[test]
fn the_library_carries_no_simulator() {
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|p| module_of(p).first().is_none_or(|m| m != "bin"))
        .filter(|p| code(p).contains("ferry_sim"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(found.is_empty(), "library files that use the simulators: {found:?}");
}

/// Every `crate::…`, `super::…` or `self::…` path in `text`, as segments
/// (a `use a::{b, c}` group counts as its prefix `a`).
fn paths(text: &str) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let end = text[at..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).map_or(text.len(), |e| at + e);
            out.push(text[at..end].split("::").filter(|s| !s.is_empty()).map(String::from).collect());
        }
    }
    out
}

/// The deepest module a path names, from module `me`.
fn resolve(me: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut base: Vec<String> = me.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        _ => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
    }
    let mut best = None;
    for n in 0..=rest.len() {
        let candidate: Vec<String> = base.iter().chain(&rest[..n]).cloned().collect();
        if modules.contains(&candidate) {
            best = Some(candidate);
        }
    }
    best.filter(|m| m.as_slice() != me)
}

/// The strongly connected groups of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    group.push(w.join("::"));
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

/// The checker finds a cycle when there is one.
#[test]
fn the_cycle_check_sees_a_cycle() {
    let m = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    let mut edges = BTreeMap::new();
    edges.insert(m("api::sync"), BTreeSet::from([m("api::cluster")]));
    edges.insert(m("api::cluster"), BTreeSet::from([m("api::sync")]));
    edges.insert(m("plugin"), BTreeSet::from([m("state")]));
    assert_eq!(cycles(&edges), vec![vec!["api::cluster".to_string(), "api::sync".to_string()]]);
    let modules: BTreeSet<Vec<String>> = [m("api"), m("api::sync"), m("api::cluster"), m("state")].into();
    assert_eq!(resolve(&m("api::sync"), &m("super::cluster::view"), &modules), Some(m("api::cluster")));
    assert_eq!(resolve(&m("api::sync"), &m("crate::state::Page"), &modules), Some(m("state")));
    assert_eq!(paths("use crate::a::{b, c};\nlet x = super::y::z(1);"), vec![m("crate::a"), m("super::y::z")]);
}
