//! The gateway's token calls (`/openWeb/auth/refreshToken`,
//! `getInitToken`): signed like every call, without `biz` or
//! `access_token`; tried once (the keeper decides what a failure means).

use super::TokenKeeper;
use crate::source::jushuitan::retry::{Answer, SourceError, Verdict, classify_body, classify_status, classify_transport};
use jiff::Timestamp;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What the token calls answer in `data`.
#[derive(Deserialize)]
pub(super) struct Issued {
    pub(super) access_token: String,
    pub(super) refresh_token: String,
    pub(super) expires_in: i64,
}

impl Answer for Issued {
    const SHAPE: &'static str = "{access_token, expires_in, refresh_token}";
}

impl TokenKeeper {
    /// A signed token call (no `biz`, no `access_token`).
    pub(super) async fn call(&self, path: &str, extra: &[(&str, &str)]) -> Result<Issued, SourceError> {
        let mut fields = BTreeMap::new();
        fields.insert("app_key".to_string(), self.app_key.clone());
        fields.insert("timestamp".to_string(), Timestamp::now().as_second().to_string());
        fields.insert("charset".to_string(), "utf-8".to_string());
        for (k, v) in extra {
            fields.insert(k.to_string(), v.to_string());
        }
        let sign = crate::source::jushuitan::sign::sign(self.app_secret.expose(), &fields);
        fields.insert("sign".to_string(), sign);
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&fields).finish();
        let sent = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8")
            .body(body)
            .send()
            .await;
        let verdict = match sent {
            Err(e) => classify_transport(&e),
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Err(e) => classify_transport(&e),
                    Ok(b) if status == 200 => classify_body::<Issued>(&b),
                    Ok(b) => classify_status(status, &b),
                }
            }
        };
        match verdict {
            Verdict::Ok(i) => Ok(i),
            Verdict::Fail(e) => Err(e),
            Verdict::Retry(cause, last) => Err(SourceError::Exhausted { attempts: 1, cause, last }),
        }
    }
}
