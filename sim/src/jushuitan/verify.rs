//! The simulator's own check of a request's `sign`, written from the
//! published rule and not shared with the client's signing code: a bug in
//! the client's signer must fail here as it would at the real gateway.
//! The rule: lower-case hex MD5 of the app secret, then `key` and `value`
//! of every field but `sign` whose value is not empty, in ascending byte
//! order of the keys.

use md5::{Digest, Md5};

/// The `sign` the gateway expects for `fields` under `secret`.
pub fn expected<'a>(secret: &str, fields: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut kept: Vec<(&str, &str)> =
        fields.into_iter().filter(|(k, v)| k.as_str() != "sign" && !v.is_empty()).map(|(k, v)| (k.as_str(), v.as_str())).collect();
    kept.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut md5 = Md5::new();
    md5.update(secret.as_bytes());
    for (k, v) in kept {
        md5.update(k.as_bytes());
        md5.update(v.as_bytes());
    }
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::expected;
    use std::collections::HashMap;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Both reference vectors of `jushuitan-api.md`, fields in any order.
    #[test]
    fn the_published_vectors() {
        let f = fields(&[("timestamp", "100"), ("charset", "utf-8"), ("app_key", "app"), ("sign", "ignored"), ("biz", "")]);
        assert_eq!(expected("secret", &f), "706427ca94e342781ac36d501151cb10");
        let f = fields(&[
            ("code", "123456"),
            ("app_key", "5b53060f23d84ddf9703056e84fa5a2d"),
            ("grant_type", "authorization_code"),
            ("timestamp", "1639128407"),
            ("charset", "utf-8"),
        ]);
        assert_eq!(expected("e9c5ca33fecb404b8e6cdbd0ef4a6d25", &f), "05e3a51e19e0883afd1882ccd309e0b9");
    }
}
