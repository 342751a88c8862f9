//! `ferry plugin check` / `ferry plugin test` on the built plugins, and the
//! errors for files that are not plugins.

use crate::helpers::ferry;

#[test]
fn check_prints_what_the_plugin_is() {
    let out = ferry(&["plugin", "check", ferry_fixtures::JUSHUITAN_ORDERS]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in ["plugin:      jushuitan-orders 0.1.0", "contract:    0.1.0", "digest:      sha256:", "size:", "compile:", "result:      PASS"] {
        assert!(text.contains(want), "missing `{want}`");
    }
    let out = ferry(&["plugin", "check", ferry_fixtures::JUSHUITAN_ORDERS, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["name"].as_str(), v["contract"].as_str(), v["pass"].as_bool()), (Some("jushuitan-orders"), Some("0.1.0"), Some(true)), "{v}");
}

#[test]
fn check_fails_on_bad_options() {
    let dir = tempfile::tempdir().unwrap();
    let options = dir.path().join("o.json");
    std::fs::write(&options, r#"{"fields": [{"to": "a"}]}"#).unwrap();
    let out = ferry(&["plugin", "check", ferry_fixtures::DECLARATIVE, "--options", options.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("result:      FAIL"));
    // A date pattern with a directive strftime does not know is refused, naming it.
    std::fs::write(&options, r#"{"fields": [{"to": "d", "from": "io_date", "format": "date", "pattern": "%Y%Q"}]}"#).unwrap();
    let out = ferry(&["plugin", "check", ferry_fixtures::DECLARATIVE, "--options", options.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pattern `%Y%Q`") && text.contains("result:      FAIL"), "{text}");
}

#[test]
fn clear_errors_for_non_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let empty_component = dir.path().join("empty.wasm");
    std::fs::write(&empty_component, b"\0asm\x0d\0\x01\0").unwrap();
    let text = dir.path().join("text.wasm");
    std::fs::write(&text, "hello").unwrap();
    let missing = dir.path().join("missing.wasm");
    let cases = [
        (missing.to_str().unwrap(), "cannot read plugin"),
        (core.to_str().unwrap(), "core WebAssembly module"),
        (text.to_str().unwrap(), "no `\\0asm` header"),
        (empty_component.to_str().unwrap(), "is not a ferry mapping plugin"),
    ];
    for (file, expected) in cases {
        let out = ferry(&["plugin", "check", file]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected) && stderr.contains(file), "{file}: {stderr}");
    }
}

#[test]
fn test_prints_one_outcome_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"o_id\": 1, \"io_date\": \"2024-05-06 07:08:09\", \"items\": [{\"sku_id\": \"a\", \"qty\": 3, \"sale_price\": 33.33}]}\n\n{\"o_id\": 2, \"io_date\": \"2024-05-06\", \"items\": [{\"sku_id\": \"a\", \"qty\": \"x\", \"sale_price\": 1}]}\nnot json\n",
    )
    .unwrap();
    let out = ferry(&["plugin", "test", ferry_fixtures::JUSHUITAN_ORDERS, "--input", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "errored records make the exit non-zero");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["mapped"][0]["amount"], serde_json::json!(99.99));
    assert_eq!(lines[1]["error"]["field"], serde_json::json!("items[0].qty"));
    assert!(lines[2]["error"]["message"].as_str().unwrap().contains("not valid JSON"));
}

/// Options as JSON or TOML, from a file or from a pipeline (whose
/// `mapping.options` may itself name a file), give the same mapping.
#[test]
fn options_as_json_toml_or_a_pipelines_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let json = d.join("o.json");
    std::fs::write(&json, r#"{"fields": [{"to": "订单编号", "from": "o_id", "format": "string", "required": true}, {"to": "来源", "value": "聚水潭"}]}"#)
        .unwrap();
    let toml = d.join("o.toml");
    std::fs::write(
        &toml,
        "fields = [\n  { to = \"订单编号\", from = \"o_id\", format = \"string\", required = true },\n  { to = \"来源\", value = \"聚水潭\" },\n]\n",
    )
    .unwrap();
    let input = d.join("in.jsonl");
    std::fs::write(&input, "{\"o_id\": 7}\n{\"o_id\": 8}\n").unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec!["plugin", "test", ferry_fixtures::DECLARATIVE];
        a.extend_from_slice(extra);
        let out = ferry(&a);
        assert_eq!(out.status.code(), Some(0), "{extra:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let from_json = run(&["--options", json.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert!(from_json.contains("\"订单编号\":\"7\"") && from_json.contains("聚水潭"), "{from_json}");
    assert_eq!(run(&["--options", toml.to_str().unwrap(), "--input", input.to_str().unwrap()]), from_json);
    // A pipeline whose options are a TOML file beside it, with the same records as examples.
    let state = d.join("s.db");
    let mut spec = crate::helpers::PipelineSpec::offline(&state);
    spec.plugin = ferry_fixtures::DECLARATIVE;
    spec.mapping_options = "\"o.toml\"";
    let pipeline = d.join("p.toml");
    std::fs::write(&pipeline, spec.toml().replace("[target]", "examples = \"in.jsonl\"\n\n[target]")).unwrap();
    assert_eq!(run(&["--pipeline", pipeline.to_str().unwrap()]), from_json, "the pipeline's options and examples");
    let out = ferry(&["validate", pipeline.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&pipeline, spec.toml().replace("options = \"o.toml\"", "options = \"missing.toml\"")).unwrap();
    let out = ferry(&["validate", pipeline.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("mapping.options: cannot read options file"), "a missing options file is named");
}
