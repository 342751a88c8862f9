//! `${ENV}` references in a pipeline file: expanded at load, secrets kept
//! as [`Secret`]s; a command that only reads the pipeline's state may
//! leave the secrets unset ([`Secrets::Deferred`]).

use crate::source::jushuitan::Secret;

/// Replaces every `${VAR}` with the variable's value.
pub(crate) fn expand(text: &str, key: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| format!("{key}: `${{` without a closing `}}`"))? + i;
        let var = &rest[i + 2..end];
        let value = std::env::var(var).map_err(|_| format!("{key}: environment variable `{var}` is not set"))?;
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(crate) fn url(text: &str, key: &str) -> Result<String, String> {
    let v = expand(text, key)?;
    if !(v.starts_with("http://") || v.starts_with("https://")) {
        return Err(format!("{key}: expected an http:// or https:// URL, got `{v}`"));
    }
    Ok(v)
}

/// How a load treats `${ENV}` secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Secrets {
    /// Every secret must be set (a run, a validate).
    Required,
    /// Unset ones are left empty: the command only reads the pipeline's
    /// state and never calls the source or the target.
    Deferred,
}

pub(super) fn secret(text: &str, key: &str, secrets: Secrets) -> Result<Secret, String> {
    let v = match expand(text, key) {
        Err(_) if secrets == Secrets::Deferred => return Ok(Secret::default()),
        other => other?,
    };
    if v.is_empty() {
        return Err(format!("{key}: is empty"));
    }
    Ok(Secret::new(v))
}
