//! `ferry jushuitan sign`: the canonical string (secret masked) and the
//! sign, for users debugging code 10; `ferry jushuitan token ...`: the
//! pipeline's access token as Ferry keeps it.

use super::Exit;
use crate::source::jushuitan::sign;
use anyhow::{Context, bail};
use clap::Subcommand;
use std::collections::BTreeMap;

#[derive(Debug, Subcommand)]
pub enum JushuitanCommand {
    /// Sign fields as the new gateway does: md5(secret + sorted key+value).
    Sign {
        /// Environment variable holding the app secret.
        #[arg(long)]
        secret_env: String,
        /// Fields as key=value.
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// The pipeline's access token as Ferry keeps it: status, refresh, set.
    #[command(subcommand)]
    Token(super::token::TokenCommand),
}

pub fn run(cmd: JushuitanCommand) -> anyhow::Result<Exit> {
    let (secret_env, fields) = match cmd {
        JushuitanCommand::Sign { secret_env, fields } => (secret_env, fields),
        JushuitanCommand::Token(t) => return super::token::run(t),
    };
    let secret = std::env::var(&secret_env).with_context(|| format!("--secret-env: environment variable `{secret_env}` is not set"))?;
    let mut map = BTreeMap::new();
    for f in fields {
        let Some((k, v)) = f.split_once('=') else { bail!("field `{f}`: expected key=value") };
        map.insert(k.to_string(), v.to_string());
    }
    println!("canonical: {}", sign::canonical(&secret, &map, true));
    println!("sign:      {}", sign::sign(&secret, &map));
    Ok(Exit::Ok)
}
