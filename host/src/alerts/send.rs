//! Posting notices: one task per rule drains its queue, builds the body its
//! format takes (Ferry's JSON, or the DingTalk, WeCom and Feishu robots'),
//! signs it where the robot asks, and retries with backoff until the post
//! is taken or the attempts run out. A robot answers HTTP 200 with an
//! error code in the body when it refuses (a bad signature, a keyword
//! missing, too many posts a minute): that is a failure too.

use super::{Format, Notice, Rule};
use backon::{BackoffBuilder, ExponentialBuilder};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Posts `rule`'s notices until `stop` (or every sender is gone).
pub(super) async fn poster(rule: Rule, mut queue: mpsc::Receiver<Notice>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let client = match reqwest::Client::builder().timeout(POST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return tracing::error!(alert = %rule.name, "alerts of this rule cannot be posted: {e}"),
    };
    loop {
        let notice = tokio::select! {
            n = queue.recv() => match n { Some(n) => n, None => return },
            _ = stop.changed() => return,
        };
        let mut delays =
            ExponentialBuilder::default().with_min_delay(Duration::from_secs(1)).with_max_delay(Duration::from_secs(60)).without_max_times().build();
        let mut attempt = 1;
        loop {
            match post(&client, &rule, &notice).await {
                Ok(()) => {
                    metrics::counter!("ferry_alert_posts_total", "alert" => rule.name.clone(), "result" => "ok").increment(1);
                    break;
                }
                Err(e) if attempt >= rule.attempts => {
                    tracing::error!(alert = %rule.name, pipeline = %notice.pipeline, "alert not posted after {attempt} attempts: {e}");
                    metrics::counter!("ferry_alert_posts_total", "alert" => rule.name.clone(), "result" => "failed").increment(1);
                    break;
                }
                Err(e) => {
                    let wait = delays.next().unwrap_or(Duration::from_secs(60));
                    tracing::warn!(alert = %rule.name, pipeline = %notice.pipeline, "alert post failed (attempt {attempt} of {}; again in {wait:?}): {e}", rule.attempts);
                    metrics::counter!("ferry_alert_posts_total", "alert" => rule.name.clone(), "result" => "retried").increment(1);
                    attempt += 1;
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }
}

async fn post(client: &reqwest::Client, rule: &Rule, notice: &Notice) -> Result<(), String> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let (url, body) = request(rule, notice, now_ms);
    let answer = client.post(&url).json(&body).send().await.map_err(|e| format!("{}: {e}", redact(&rule.webhook)))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{} answered HTTP {status}: {}", redact(&rule.webhook), text.chars().take(200).collect::<String>()));
    }
    refused(rule.format, &text).map_or(Ok(()), |why| Err(format!("{} refused the post: {why}", redact(&rule.webhook))))
}

/// The URL and body of a post of `notice` at `now_ms` (Unix milliseconds).
pub(super) fn request(rule: &Rule, notice: &Notice, now_ms: i64) -> (String, Value) {
    let text = text(notice);
    match rule.format {
        Format::Json => (
            rule.webhook.clone(),
            json!({
                "alert": notice.rule,
                "condition": notice.condition,
                "state": notice.state.as_str(),
                "pipeline": notice.pipeline,
                "tenant": notice.tenant,
                "message": notice.message,
                "since": crate::time::rfc3339(notice.since),
                "at": crate::time::rfc3339(notice.at),
                "text": text,
            }),
        ),
        Format::Dingtalk => {
            let mut url = rule.webhook.clone();
            if let Some(secret) = &rule.secret {
                // timestamp + "\n" + secret, HmacSHA256 keyed by the secret, base64, URL-encoded.
                let sign = hmac_base64(secret.as_bytes(), format!("{now_ms}\n{secret}").as_bytes());
                let sign: String = form_urlencoded::byte_serialize(sign.as_bytes()).collect();
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&format!("timestamp={now_ms}&sign={sign}"));
            }
            (url, json!({"msgtype": "text", "text": {"content": text}}))
        }
        Format::Wecom => (rule.webhook.clone(), json!({"msgtype": "text", "text": {"content": text}})),
        Format::Feishu => {
            let mut body = json!({"msg_type": "text", "content": {"text": text}});
            if let Some(secret) = &rule.secret {
                // HmacSHA256 keyed by timestamp + "\n" + secret over nothing, base64; seconds.
                let secs = now_ms / 1000;
                body["timestamp"] = json!(secs.to_string());
                body["sign"] = json!(hmac_base64(format!("{secs}\n{secret}").as_bytes(), b""));
            }
            (rule.webhook.clone(), body)
        }
    }
}

/// The text a robot shows.
fn text(n: &Notice) -> String {
    let head = match n.state {
        super::NoticeState::Firing => "告警 FIRING",
        super::NoticeState::Repeat => "告警 STILL FIRING",
        super::NoticeState::Resolved => "恢复 RESOLVED",
    };
    format!("[Ferry {head}] {}\npipeline: {} (tenant {})\n{}\nsince: {}", n.rule, n.pipeline, n.tenant, n.message, crate::time::rfc3339(n.since))
}

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Why a robot refused a post it answered with HTTP 200, if it did.
fn refused(format: Format, body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let (code, message) = match format {
        Format::Json => return None,
        Format::Dingtalk | Format::Wecom => (v.get("errcode"), v.get("errmsg")),
        Format::Feishu => (v.get("code").or_else(|| v.get("StatusCode")), v.get("msg").or_else(|| v.get("StatusMessage"))),
    };
    let code = code?.as_i64()?;
    (code != 0).then(|| format!("code {code}: {}", message.and_then(Value::as_str).unwrap_or("")))
}

/// The webhook without its query (robot URLs carry their access token there).
fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{Condition, NoticeState};

    fn rule(format: Format, secret: Option<&str>) -> Rule {
        Rule {
            name: "r".into(),
            condition: Condition::RunFailed,
            pipelines: vec![],
            webhook: "https://oapi.dingtalk.com/robot/send?access_token=abc".into(),
            format,
            secret: secret.map(str::to_string),
            repeat: None,
            attempts: 1,
        }
    }

    fn notice() -> Notice {
        let at: jiff::Timestamp = "2026-12-06T01:00:00Z".parse().unwrap();
        Notice {
            rule: "r".into(),
            condition: "run_failed",
            state: NoticeState::Firing,
            pipeline: "orders".into(),
            tenant: "acme".into(),
            message: "run failed: x".into(),
            since: at,
            at,
        }
    }

    #[test]
    fn robots_get_their_own_bodies_and_signatures() {
        // DingTalk's documented example: secret "SEC..." signs timestamp "\n" secret.
        let (url, body) = request(&rule(Format::Dingtalk, Some("SECxyz")), &notice(), 1_700_000_000_000);
        let sign = hmac_base64(b"SECxyz", b"1700000000000\nSECxyz");
        let encoded: String = form_urlencoded::byte_serialize(sign.as_bytes()).collect();
        assert_eq!(url, format!("https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000&sign={encoded}"));
        assert_eq!(body["msgtype"], "text");
        assert!(body["text"]["content"].as_str().unwrap().contains("pipeline: orders (tenant acme)"));
        assert!(body["text"]["content"].as_str().unwrap().contains("since: 2026-12-06T09:00:00+08:00"));
        let (_, body) = request(&rule(Format::Feishu, Some("k")), &notice(), 1_700_000_000_999);
        assert_eq!(body["msg_type"], "text");
        assert_eq!(body["timestamp"], "1700000000");
        assert_eq!(body["sign"], hmac_base64(b"1700000000\nk", b""));
        let (_, body) = request(&rule(Format::Wecom, None), &notice(), 0);
        assert_eq!(body["msgtype"], "text");
        let (_, body) = request(&rule(Format::Json, None), &notice(), 0);
        assert_eq!((body["state"].as_str(), body["condition"].as_str()), (Some("firing"), Some("run_failed")));
    }

    #[test]
    fn a_robot_refusing_with_http_200_is_a_failure() {
        assert_eq!(refused(Format::Dingtalk, r#"{"errcode":310000,"errmsg":"sign not match"}"#).as_deref(), Some("code 310000: sign not match"));
        assert_eq!(refused(Format::Dingtalk, r#"{"errcode":0,"errmsg":"ok"}"#), None);
        assert_eq!(refused(Format::Feishu, r#"{"code":19021,"msg":"sign match fail"}"#).as_deref(), Some("code 19021: sign match fail"));
        assert_eq!(refused(Format::Feishu, r#"{"StatusCode":0,"StatusMessage":"success"}"#), None);
        assert_eq!(refused(Format::Json, r#"{"errcode":5}"#), None);
    }
}
