//! Error messages in the user's terms: a parser's message names Rust types
//! (`expected usize`, `expected struct RawRateLimit`); these words are what
//! a person editing a TOML or JSON file calls them.

/// `message` with Rust type names replaced by what they are in a file.
pub fn words(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, plain) in [
        ("usize", "a whole number"),
        ("u64", "a whole number"),
        ("u32", "a whole number"),
        ("u16", "a whole number"),
        ("u8", "a whole number"),
        ("i64", "a whole number"),
        ("i32", "a whole number"),
        ("f64", "a number"),
        ("f32", "a number"),
    ] {
        out = out.replace(&format!("expected {rust}"), &format!("expected {plain}"));
    }
    // `expected struct RawRateLimit` / `expected enum PagingMode`.
    for (kind, plain) in [("struct ", "a table"), ("enum ", "one of the allowed values")] {
        let pattern = format!("expected {kind}");
        while let Some(i) = out.find(&pattern) {
            let name_start = i + pattern.len();
            let name_end = out[name_start..].find(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(out.len(), |n| name_start + n);
            out.replace_range(i..name_end, &format!("expected {plain}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn rust_types_become_file_words() {
        assert_eq!(words("invalid type: string \"x\", expected usize"), "invalid type: string \"x\", expected a whole number");
        assert_eq!(words("invalid type: integer `5`, expected struct RawRateLimit at line 3"), "invalid type: integer `5`, expected a table at line 3");
        assert_eq!(words("expected f64"), "expected a number");
        assert_eq!(words("unknown variant `x`, expected `ts` or `page`"), "unknown variant `x`, expected `ts` or `page`");
    }
}
