//! What is transient is decided here and only here: HTTP 5xx, timeouts,
//! resets, truncated JSON and codes 199/200 are retried with backoff;
//! codes 10, 100, 110, 140, 180, 190 fail fast with what to fix.

use serde::de::{DeserializeOwned, MapAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::marker::PhantomData;

/// Why a call is retried (counted per cause for the run summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// HTTP 5xx (or 429).
    Http5xx,
    /// No answer in time.
    Timeout,
    /// Connection refused, reset or closed mid-answer.
    Connection,
    /// The body was not complete JSON.
    Truncated,
    /// Code 199: too frequent.
    Code199,
    /// Code 200: call budget exceeded.
    Code200,
    /// An HTML page instead of JSON (a gateway's maintenance page, even
    /// with HTTP 200).
    Maintenance,
}

impl Cause {
    /// Every cause, in summary order.
    pub const ALL: [Cause; 7] = [Cause::Http5xx, Cause::Timeout, Cause::Connection, Cause::Truncated, Cause::Code199, Cause::Code200, Cause::Maintenance];

    /// Short name for summaries and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Http5xx => "http_5xx",
            Cause::Timeout => "timeout",
            Cause::Connection => "connection",
            Cause::Truncated => "truncated_json",
            Cause::Code199 => "code_199",
            Cause::Code200 => "code_200",
            Cause::Maintenance => "maintenance_page",
        }
    }
}

/// A source failure that retrying will not fix (or that outlived its retries).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The API refused the call for a reason the user must fix.
    #[error("Jushuitan refused the call with code {code} ({meaning}): {msg}. Fix: {hint}")]
    Refused {
        /// The `code` of the answer.
        code: i64,
        /// What the code means.
        meaning: &'static str,
        /// The API's `msg`.
        msg: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// A non-retryable HTTP status.
    #[error("Jushuitan answered HTTP {status}: {body}")]
    Http {
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Transient failures outlived the retry budget.
    #[error("gave up after {attempts} attempts; last failure ({}): {last}", .cause.name())]
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last cause.
        cause: Cause,
        /// Its detail.
        last: String,
    },
    /// The answer had an unexpected shape.
    #[error("unexpected answer from Jushuitan: {0}")]
    Protocol(String),
    /// The access token of an app and merchant cannot be used or renewed.
    #[error("the access token of {key} {what}. Fix: {fix}")]
    Token {
        /// `app_key/merchant`.
        key: String,
        /// What is wrong (never a token).
        what: String,
        /// What to do about it.
        fix: String,
    },
    /// The answers for a window kept contradicting themselves or the
    /// request; the window is not finished and the checkpoint stays before it.
    #[error("the answers do not prove the window complete: at {at}, {what} (read {reads} times)")]
    Inconsistent {
        /// The page or cursor.
        at: String,
        /// What disagreed.
        what: String,
        /// How many times the page was read.
        reads: u32,
    },
}

/// The verdict on one attempt.
#[derive(Debug)]
pub enum Verdict<T> {
    /// `data` of a code-0 answer, read as `T`.
    Ok(T),
    /// Try again later.
    Retry(Cause, String),
    /// Stop.
    Fail(SourceError),
}

fn refused(code: i64, msg: String) -> SourceError {
    let (meaning, hint) = match code {
        10 => ("invalid sign", "check app_key and app_secret; `ferry jushuitan sign` prints the canonical string to compare"),
        100 => (
            "token invalid or expired",
            "refresh the access_token (/openWeb/auth/refreshToken) and update the secret it comes from, or set source.refresh_token (with FERRY_TOKEN_KEY) so Ferry keeps the pair and renews it itself",
        ),
        150 => (
            "the merchant must authorize the app again",
            "a service-provider app may not refresh its token: the merchant authorizes the app again, then `ferry jushuitan token set PIPELINE`",
        ),
        21024 => ("getInitToken is for self-built apps", "a service-provider app gets its token from the merchant's authorization"),
        110 => ("IP not whitelisted", "add this machine's public IP to the app's whitelist in the Jushuitan open platform"),
        140 => ("parameter error", "check the metadata request fields and the window (both times, ≤ 7 days, page_size ≤ 50)"),
        180 => ("timestamp invalid", "check this machine's clock; the server accepts about 10 minutes of skew"),
        190 => ("no permission for this API", "enable orders.out.simple.query for the app in the Jushuitan open platform"),
        _ => ("unknown code", "see the Jushuitan open platform documentation for this code"),
    };
    SourceError::Refused { code, meaning, msg, hint }
}

/// What a call's `data` is read as.
pub trait Answer: DeserializeOwned {
    /// What `data` should look like, for the error when it does not.
    const SHAPE: &'static str;
}

impl Answer for Value {
    const SHAPE: &'static str = "any JSON object";
}

/// The answer's envelope.
#[derive(Deserialize)]
struct Envelope<D> {
    code: Option<Value>,
    msg: Option<Value>,
    data: Option<D>,
}

/// A `T` that must come as a JSON object (serde would also build a struct
/// from an array of its fields).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

/// Classifies an HTTP 200 body, reading a code-0 answer's `data` as `T`.
///
/// A good answer is read in one pass, its `data` straight into `T`; only an
/// answer that does not read that way is read again, envelope alone, to say
/// what is wrong with it.
pub fn classify_body<T: Answer>(body: &[u8]) -> Verdict<T> {
    if let Ok(Envelope { code: Some(code), data: Some(Object(data)), .. }) = serde_json::from_slice::<Envelope<Object<T>>>(body)
        && code.as_i64() == Some(0)
    {
        return Verdict::Ok(data);
    }
    let v: Envelope<&RawValue> = match serde_json::from_slice(body) {
        Ok(v) if body.trim_ascii_start().starts_with(b"{") => v,
        Ok(_) => return Verdict::Fail(SourceError::Protocol("the answer is not a JSON object".into())),
        Err(_) if body.trim_ascii_start().starts_with(b"<") => {
            let start = String::from_utf8_lossy(&body[..body.len().min(120)]).split_whitespace().collect::<Vec<_>>().join(" ");
            return Verdict::Retry(Cause::Maintenance, format!("an HTML page instead of JSON: {start}"));
        }
        Err(e) if e.is_eof() || e.is_syntax() => return Verdict::Retry(Cause::Truncated, format!("body is not complete JSON: {e}")),
        Err(e) => return Verdict::Fail(SourceError::Protocol(e.to_string())),
    };
    let code = v.code.as_ref().and_then(Value::as_i64);
    let msg = v.msg.as_ref().and_then(Value::as_str).unwrap_or_default().to_string();
    match code {
        Some(0) => match v.data {
            Some(d) if d.get().starts_with('{') => match serde_json::from_str::<T>(d.get()) {
                Ok(data) => Verdict::Ok(data),
                Err(e) => Verdict::Fail(SourceError::Protocol(format!("the answer's `data` is not shaped as expected ({}): {e}", T::SHAPE))),
            },
            _ => Verdict::Fail(SourceError::Protocol("code 0 without a `data` object".into())),
        },
        Some(199) => Verdict::Retry(Cause::Code199, msg),
        Some(200) => Verdict::Retry(Cause::Code200, msg),
        Some(code) => Verdict::Fail(refused(code, msg)),
        None => Verdict::Fail(SourceError::Protocol("answer has no numeric `code`".into())),
    }
}

/// Classifies a non-200 HTTP status.
pub fn classify_status<T>(status: u16, body: &[u8]) -> Verdict<T> {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).to_string();
    match status {
        500..=599 => Verdict::Retry(Cause::Http5xx, format!("HTTP {status}")),
        429 => Verdict::Retry(Cause::Http5xx, "HTTP 429".into()),
        _ => Verdict::Fail(SourceError::Http { status, body: text }),
    }
}

/// Classifies a transport error.
pub fn classify_transport<T>(err: &reqwest::Error) -> Verdict<T> {
    if err.is_timeout() { Verdict::Retry(Cause::Timeout, "no answer before the timeout".into()) } else { Verdict::Retry(Cause::Connection, format!("{err}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page-like `data`.
    #[derive(Debug, Deserialize)]
    struct Shape {
        datas: Vec<u32>,
    }

    impl Answer for Shape {
        const SHAPE: &'static str = "`datas` a list of numbers";
    }

    fn classify(body: &[u8]) -> Verdict<Shape> {
        classify_body(body)
    }

    fn body(code: i64) -> Vec<u8> {
        format!(r#"{{"code":{code},"msg":"m","data":{{"datas":[]}}}}"#).into_bytes()
    }

    /// Pins exactly which answers are retried.
    #[test]
    fn retry_table() {
        let retried = |v: Verdict<Shape>| match v {
            Verdict::Retry(c, _) => Some(c),
            _ => None,
        };
        assert!(matches!(classify(&body(0)), Verdict::Ok(_)));
        assert_eq!(retried(classify(&body(199))), Some(Cause::Code199));
        assert_eq!(retried(classify(&body(200))), Some(Cause::Code200));
        for code in [10, 100, 110, 140, 180, 190, 999] {
            match classify(&body(code)) {
                Verdict::Fail(SourceError::Refused { code: c, hint, .. }) => assert!(c == code && !hint.is_empty()),
                other => panic!("code {code} must fail fast, got {other:?}"),
            }
        }
        assert_eq!(retried(classify(br#"{"code":0,"data":{"da"#)), Some(Cause::Truncated));
        assert_eq!(retried(classify(b"")), Some(Cause::Truncated));
        assert_eq!(retried(classify("<!DOCTYPE html><html><body>系统维护</body></html>".as_bytes())), Some(Cause::Maintenance));
        assert_eq!(retried(classify(br#"{"code":199,"msg":"busy","data":"no"}"#)), Some(Cause::Code199));
        assert!(matches!(classify(br#"{"data":{"datas":[7]},"code":0}"#), Verdict::Ok(Shape { datas }) if datas == [7]));
        match classify(br#"{"code":0,"data":{"datas":"x"}}"#) {
            Verdict::Fail(SourceError::Protocol(m)) => assert!(m.contains("`datas` a list of numbers"), "{m}"),
            other => panic!("a misshapen page must fail, got {other:?}"),
        }
        for odd in [&br#"{"code":0}"#[..], br#"{"code":0,"data":[1]}"#, br#"{"code":0,"data":[[1]]}"#, br#"{"code":"0","data":{}}"#, b"[]", b"[0,null,{}]"] {
            assert!(matches!(classify(odd), Verdict::Fail(SourceError::Protocol(_))), "{}", String::from_utf8_lossy(odd));
        }
        for status in [500, 502, 503, 504, 429] {
            assert!(retried(classify_status::<Shape>(status, b"")).is_some(), "{status}");
        }
        for status in [400, 401, 403, 404] {
            assert!(matches!(classify_status::<Shape>(status, b"x"), Verdict::Fail(SourceError::Http { .. })), "{status}");
        }
    }
}
