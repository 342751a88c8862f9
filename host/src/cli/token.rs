//! `ferry jushuitan token status|refresh|set PIPELINE`: the pipeline's
//! access token as Ferry keeps it (expiry, how and when it was obtained,
//! the last refresh and its answer; never the token), a refresh now, and
//! the pair a merchant's re-authorization gave.

use super::Exit;
use crate::credentials::{Pair, Sealer, TokenVault};
use crate::pipeline::Pipeline;
use crate::source::jushuitan::token::{set_pair, token_key};
use crate::source::jushuitan::{JushuitanClient, TokenSettings};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::io::BufRead;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Expiry, last refresh and state of the pipeline's token (never the token).
    Status {
        /// The pipeline file.
        pipeline: std::path::PathBuf,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Refresh the token now (one refresh across every process that shares it).
    Refresh {
        /// The pipeline file.
        pipeline: std::path::PathBuf,
    },
    /// Store the pair a merchant's (re-)authorization gave: two lines on
    /// stdin (access token, then refresh token), or from --access-env and
    /// --refresh-env.
    Set {
        /// The pipeline file.
        pipeline: std::path::PathBuf,
        /// Environment variable holding the access token.
        #[arg(long, requires = "refresh_env")]
        access_env: Option<String>,
        /// Environment variable holding the refresh token.
        #[arg(long, requires = "access_env")]
        refresh_env: Option<String>,
        /// Seconds the access token has left (`expires_in` of the answer).
        #[arg(long)]
        expires_in: Option<u64>,
    },
}

fn kept(path: &std::path::Path, read_only: bool) -> anyhow::Result<(Pipeline, TokenSettings)> {
    let p = if read_only { Pipeline::load_state_only(path)? } else { Pipeline::load(path)? };
    let Some(settings) = p.source.client.tokens.clone() else {
        bail!("{}: the pipeline does not keep its token (set source.refresh_token, and FERRY_TOKEN_KEY, so Ferry stores and renews it)", path.display())
    };
    Ok((p, settings))
}

pub fn run(cmd: TokenCommand) -> anyhow::Result<Exit> {
    match cmd {
        TokenCommand::Status { pipeline, json } => {
            let (p, settings) = kept(&pipeline, true)?;
            let store = p.state.open().context("opening the state store")?;
            status(&p, &settings, store.as_ref(), json)
        }
        TokenCommand::Refresh { pipeline } => {
            let (p, settings) = kept(&pipeline, false)?;
            let store = p.state.open().context("opening the state store")?;
            let vault: Arc<dyn TokenVault> = store.clone();
            let client = JushuitanClient::new(p.source.client.clone(), None)?.with_tokens(vault)?;
            let keeper = client.tokens().context("the token keeper")?.clone();
            super::runtime()?.block_on(keeper.refresh_now())?;
            status(&p, &settings, store.as_ref(), false)
        }
        TokenCommand::Set { pipeline, access_env, refresh_env, expires_in } => {
            let (p, settings) = kept(&pipeline, false)?;
            let pair = match (access_env, refresh_env) {
                (Some(a), Some(r)) => {
                    let get = |n: &str| std::env::var(n).with_context(|| format!("environment variable `{n}` is not set"));
                    Pair { access: get(&a)?, refresh: get(&r)? }
                }
                _ => {
                    let lines: Vec<String> = std::io::stdin().lock().lines().take(2).collect::<Result<_, _>>()?;
                    let [access, refresh] =
                        <[String; 2]>::try_from(lines).map_err(|_| anyhow::anyhow!("expected two lines on stdin: the access token, then the refresh token"))?;
                    Pair { access: access.trim().into(), refresh: refresh.trim().into() }
                }
            };
            if pair.access.is_empty() || pair.refresh.is_empty() {
                bail!("the access token and the refresh token must not be empty");
            }
            let store = p.state.open().context("opening the state store")?;
            let sealer = Sealer::from_env().map_err(anyhow::Error::msg)?;
            let expires_at = expires_in.map(|s| jiff::Timestamp::now() + jiff::SignedDuration::from_secs(s as i64));
            let generation = set_pair(&p.source.client, &settings, store.as_ref(), &sealer, &pair, expires_at)?;
            println!("stored the new pair of {} (generation {generation})", token_key(&p.source.client, &settings));
            status(&p, &settings, store.as_ref(), false)
        }
    }
}

fn status(p: &Pipeline, settings: &TokenSettings, store: &dyn TokenVault, json: bool) -> anyhow::Result<Exit> {
    let key = token_key(&p.source.client, settings);
    let Some(r) = store.token(&key).map_err(anyhow::Error::msg)? else {
        println!("{key}: no token stored yet (the first run stores the configured pair)");
        return Ok(Exit::Ok);
    };
    let at = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let (expires, obtained_at) = (at(&r.expires_at), r.obtained_at.parse::<jiff::Timestamp>().ok());
    let left = r.seconds_left();
    if json {
        let v = serde_json::json!({
            "key": key, "state": r.state.as_str(), "generation": r.generation, "obtained": r.obtained.as_str(),
            "obtainedAt": obtained_at.map(crate::time::rfc3339), "expiresAt": expires.map(crate::time::rfc3339),
            "secondsLeft": left, "lastAttemptAt": at(&r.attempted_at).map(crate::time::rfc3339), "lastAnswer": r.answer,
        });
        println!("{v}");
        return Ok(Exit::Ok);
    }
    println!("token:        {key}");
    println!("state:        {}", r.state.as_str().replace('_', " "));
    println!("obtained:     {} at {}", r.obtained.as_str(), obtained_at.map_or("?".into(), crate::time::rfc3339));
    match (expires, left) {
        (Some(e), Some(l)) if l > 0 => {
            println!("expires:      {} (in {})", crate::time::rfc3339(e), humantime::format_duration(std::time::Duration::from_secs(l as u64)))
        }
        (Some(e), _) => println!("expires:      {} (expired)", crate::time::rfc3339(e)),
        _ => println!("expires:      unknown (set source.token_expires_at, or it is learned at the first refresh)"),
    }
    match (at(&r.attempted_at), &r.answer) {
        (Some(t), Some(a)) => println!("last refresh: {} answered: {a}", crate::time::rfc3339(t)),
        _ => println!("last refresh: none yet"),
    }
    Ok(Exit::Ok)
}
