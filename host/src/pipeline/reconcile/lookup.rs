//! Asking the target whether it still holds a record: `target.lookup`, a
//! URL with `{id}` that answers 200 when it does and 404 when it does not.
//! Anything else is an error naming the id and the answer, never a guess.

use futures_util::StreamExt;
use std::time::Duration;

/// Lookups in flight at once.
const AT_ONCE: usize = 8;

/// The target's record lookup.
#[derive(Clone)]
pub struct Lookup {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Lookup {
    /// A lookup at `url` (with `{id}`), sending the target's bearer token.
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Lookup, String> {
        let http = reqwest::Client::builder().timeout(timeout).build().map_err(|e| format!("target.lookup: {e}"))?;
        Ok(Lookup { http, url: url.to_string(), token })
    }

    /// Which of `ids` the target does not hold.
    pub async fn absent(&self, ids: Vec<String>) -> Result<Vec<String>, String> {
        // Owned items and a cloned client: the stream's futures borrow nothing (they stay `Send` for any lifetime).
        let asks = ids.into_iter().map(|id| {
            let me = self.clone();
            async move { Ok::<_, String>((!me.holds(&id).await?).then_some(id)) }
        });
        let answers: Vec<Result<Option<String>, String>> = futures_util::stream::iter(asks).buffered(AT_ONCE).collect().await;
        answers.into_iter().filter_map(Result::transpose).collect()
    }

    async fn holds(&self, id: &str) -> Result<bool, String> {
        let encoded: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let url = self.url.replace("{id}", &encoded);
        let mut req = self.http.get(&url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let answer = req.send().await.map_err(|e| format!("target.lookup of record {id}: {e}"))?;
        match answer.status().as_u16() {
            200..=299 => Ok(true),
            404 | 410 => Ok(false),
            s => Err(format!("target.lookup of record {id}: expected 200 (held) or 404 (not held), got HTTP {s}")),
        }
    }
}
