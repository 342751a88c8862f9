//! One builder of pipeline files against the simulators, for `ferry demo`,
//! the tests and the benchmarks: a Jushuitan source with the simulator's
//! demo credentials, a mapping plugin, a Command-pattern target and a
//! state path, with every setting they vary as a field. Strings are quoted
//! as TOML basic strings, so a path or URL with a quote or backslash stays
//! one value.

use std::path::PathBuf;

/// A pipeline file's settings; [`PipelineFile::toml`] writes it.
#[derive(Debug, Clone)]
pub struct PipelineFile {
    /// The pipeline's name.
    pub name: String,
    /// A comment at the top (each line gets `# `).
    pub comment: Option<String>,
    /// The Jushuitan simulator's URL.
    pub source_url: String,
    /// The app's credentials (the simulator's demo ones by default).
    pub app_key: String,
    pub app_secret: String,
    pub access_token: String,
    /// The first window's start (`yyyy-MM-dd HH:mm:ss`).
    pub start: String,
    pub window: String,
    pub lag: String,
    pub lookback: String,
    /// The source's request timeout.
    pub source_timeout: String,
    /// `paging = "..."`, when set.
    pub paging: Option<String>,
    /// `rate_limit = { per_second, per_minute }`, when set.
    pub rate_limit: Option<(u32, u32)>,
    /// More `[source]` lines, as TOML (e.g. the token keys).
    pub source_extra: Vec<String>,
    /// The QingYiYun metadata block (written verbatim as a literal string).
    pub metadata: String,
    /// The mapping plugin.
    pub plugin: PathBuf,
    /// `mapping.options` as TOML (an inline table), when set.
    pub options: Option<String>,
    /// The Command-pattern target's URL.
    pub target_url: String,
    pub resource: String,
    pub concurrency: usize,
    pub batch_size: usize,
    /// The target's request timeout, when set.
    pub target_timeout: Option<String>,
    /// The target's attempts per command, when set.
    pub max_attempts: Option<u32>,
    /// The SQLite state file.
    pub state: PathBuf,
}

impl Default for PipelineFile {
    fn default() -> Self {
        PipelineFile {
            name: "orders".into(),
            comment: None,
            source_url: "http://127.0.0.1:9".into(),
            app_key: "ferry-demo-app".into(),
            app_secret: "ferry-demo-secret".into(),
            access_token: "ferry-demo-token".into(),
            start: "2024-01-01 00:00:00".into(),
            window: "1d".into(),
            lag: "1s".into(),
            lookback: "10m".into(),
            source_timeout: "5s".into(),
            paging: None,
            rate_limit: None,
            source_extra: Vec::new(),
            metadata: String::new(),
            plugin: PathBuf::new(),
            options: None,
            target_url: "http://127.0.0.1:9".into(),
            resource: "order-commands".into(),
            concurrency: 10,
            batch_size: 100,
            target_timeout: None,
            max_attempts: None,
            state: PathBuf::from("state.db"),
        }
    }
}

/// `s` as a TOML basic string (JSON's escapes are TOML's).
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl PipelineFile {
    /// The TOML text.
    pub fn toml(&self) -> String {
        let mut out = String::new();
        let mut line = |l: String| {
            out.push_str(&l);
            out.push('\n');
        };
        for c in self.comment.iter().flat_map(|c| c.lines()) {
            line(format!("# {c}"));
        }
        line(format!("name = {}", quoted(&self.name)));
        line("\n[source]\nkind = \"jushuitan\"".into());
        for (k, v) in [
            ("base_url", &self.source_url),
            ("app_key", &self.app_key),
            ("app_secret", &self.app_secret),
            ("access_token", &self.access_token),
            ("start", &self.start),
            ("window", &self.window),
            ("lag", &self.lag),
            ("lookback", &self.lookback),
            ("timeout", &self.source_timeout),
        ] {
            line(format!("{k} = {}", quoted(v)));
        }
        if let Some(p) = &self.paging {
            line(format!("paging = {}", quoted(p)));
        }
        if let Some((ps, pm)) = self.rate_limit {
            line(format!("rate_limit = {{ per_second = {ps}, per_minute = {pm} }}"));
        }
        for extra in &self.source_extra {
            line(extra.clone());
        }
        line(format!("metadata = '''{}'''", self.metadata));
        line(format!("\n[mapping]\nplugin = {}", quoted(&self.plugin.to_string_lossy())));
        if let Some(o) = &self.options {
            line(format!("options = {o}"));
        }
        line("\n[target]\nkind = \"command\"".into());
        line(format!("base_url = {}\nresource = {}", quoted(&self.target_url), quoted(&self.resource)));
        line(format!("concurrency = {}\nbatch_size = {}", self.concurrency, self.batch_size));
        if let Some(t) = &self.target_timeout {
            line(format!("timeout = {}", quoted(t)));
        }
        if let Some(n) = self.max_attempts {
            line(format!("max_attempts = {n}"));
        }
        line(format!("\n[state]\npath = {}", quoted(&self.state.to_string_lossy())));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_setting_and_quotes_strings() {
        let f = PipelineFile {
            name: "a\"b".into(),
            comment: Some("one\ntwo".into()),
            rate_limit: Some((5, 100)),
            paging: Some("ts".into()),
            options: Some("{ x = 1 }".into()),
            max_attempts: Some(20),
            target_timeout: Some("2s".into()),
            state: PathBuf::from("C:\\state.db"),
            metadata: "{\"api\": \"orders.out.simple.query\"}".into(),
            ..PipelineFile::default()
        };
        let text = f.toml();
        for want in [
            "# one\n# two\nname = \"a\\\"b\"",
            "rate_limit = { per_second = 5, per_minute = 100 }",
            "paging = \"ts\"",
            "options = { x = 1 }",
            "max_attempts = 20",
            "timeout = \"2s\"\nmax_attempts",
            "path = \"C:\\\\state.db\"",
            "metadata = '''{\"api\": \"orders.out.simple.query\"}'''",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["state"]["path"].as_str(), Some("C:\\state.db"));
        assert_eq!(parsed["name"].as_str(), Some("a\"b"));
        assert!(!PipelineFile::default().toml().contains("rate_limit"), "unset settings are left to the pipeline's defaults");
    }
}
