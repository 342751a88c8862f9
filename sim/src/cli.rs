//! `ferry sim jushuitan` and `ferry sim target`: the simulators on loopback
//! until Ctrl-C.

use crate::jushuitan::{Faults, JushuitanSimConfig, Mutation};
use crate::target::{TargetFaults, TargetSimConfig};
use clap::{Args, Subcommand};
use std::time::Duration;

/// `ferry sim ...`.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// The Jushuitan open API (POST /open/orders/out/simple/query; GET /__sim/truth).
    Jushuitan(JushuitanArgs),
    /// A Command-pattern target (PUT/GET /{resource}/{uuid}; GET /__sim/truth).
    Target(TargetArgs),
}

/// Flags both simulators take.
#[derive(Debug, Args)]
pub struct Common {
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Probability of HTTP 500 (before processing).
    #[arg(long, default_value_t = 0.0)]
    fault_500: f64,
    /// Probability of a slow answer.
    #[arg(long, default_value_t = 0.0)]
    fault_slow: f64,
    /// Probability of a connection reset.
    #[arg(long, default_value_t = 0.0)]
    fault_reset: f64,
    /// Delay of a slow answer.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    slow_delay: Duration,
}

#[derive(Debug, Args)]
pub struct JushuitanArgs {
    /// Port on 127.0.0.1 (0 = any).
    #[arg(long, default_value_t = 8701)]
    port: u16,
    #[command(flatten)]
    common: Common,
    /// Orders at start (per merchant with `--merchants`).
    #[arg(long, default_value_t = 1000)]
    orders: usize,
    /// Serve this many merchants, each with its own orders and budget:
    /// merchant k's app key, secret and tokens are the given ones with `-k`
    /// appended (0: one merchant with the keys as given).
    #[arg(long, default_value_t = 0)]
    merchants: usize,
    /// Spread the orders over this many days before now.
    #[arg(long, default_value_t = 3)]
    days: u32,
    /// App key.
    #[arg(long, default_value = "ferry-demo-app")]
    app_key: String,
    /// App secret.
    #[arg(long, default_value = "ferry-demo-secret")]
    app_secret: String,
    /// Access token.
    #[arg(long, default_value = "ferry-demo-token")]
    access_token: String,
    /// Refresh token issued with it.
    #[arg(long, default_value = "ferry-demo-refresh")]
    refresh_token: String,
    /// Access tokens expire this long after they are issued (e.g. `30s`,
    /// `1d`); without it the access token never expires.
    #[arg(long, value_parser = humantime::parse_duration)]
    token_lifetime: Option<Duration>,
    /// A refresh is accepted only this long before the token expires
    /// (default: a tenth of the lifetime).
    #[arg(long, value_parser = humantime::parse_duration, requires = "token_lifetime")]
    refresh_window: Option<Duration>,
    /// A service-provider app: refresh answers 150, getInitToken 21024.
    #[arg(long, requires = "token_lifetime")]
    provider: bool,
    /// Calls per second per app_key.
    #[arg(long, default_value_t = 5)]
    per_second: u32,
    /// Calls per minute per app_key.
    #[arg(long, default_value_t = 100)]
    per_minute: u32,
    /// Probability of truncated JSON.
    #[arg(long, default_value_t = 0.0)]
    fault_truncated: f64,
    /// Expected orders changed per accepted request.
    #[arg(long, default_value_t = 0.0)]
    mutate: f64,
    /// Expected new orders per accepted request.
    #[arg(long, default_value_t = 0.0)]
    new_orders: f64,
    /// Expected late orders per accepted request: new, but modified
    /// `--late-by` ago, so only a re-read of that past (omissionRemedy) finds them.
    #[arg(long, default_value_t = 0.0)]
    late: f64,
    /// How long before they appear late orders were modified.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    late_by: std::time::Duration,
    /// Answer as the real API sometimes does: `NAME` or `NAME:RATE`
    /// (repeatable). Spellings: has-next-spellings, numbers-as-strings,
    /// null-texts, big-ts, huge-page, split-shipments. Lies (rate = chance per answer, 1 by
    /// default): null-list, missing-list, wrong-type-list, short-page,
    /// empty-page, has-next-forever, repeat-page, other-window,
    /// outside-rows, html.
    #[arg(long = "quirk", value_name = "NAME[:RATE]")]
    quirks: Vec<crate::jushuitan::QuirkRule>,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Port on 127.0.0.1 (0 = any).
    #[arg(long, default_value_t = 8702)]
    port: u16,
    #[command(flatten)]
    common: Common,
    /// Probability of applying, then answering 500.
    #[arg(long, default_value_t = 0.0)]
    fault_apply_then_500: f64,
    /// Commands complete this long after creation (async completion).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    completion_delay: Duration,
    /// Refuse records whose numeric id is a multiple of N (0: none).
    #[arg(long, default_value_t = 0)]
    refuse_every: u64,
    /// Answer as real targets sometimes do (repeatable).
    #[arg(long = "quirk", value_enum)]
    quirks: Vec<crate::target::TargetQuirk>,
}

/// Serves the simulator until Ctrl-C.
pub fn run(cmd: SimCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        match cmd {
            SimCommand::Jushuitan(a) => {
                let f = &a.common;
                let mut c = JushuitanSimConfig::new(f.seed);
                c.orders = a.orders;
                c.from = c.until - jiff::SignedDuration::from_hours(24 * i64::from(a.days.max(1)));
                (c.app_key, c.app_secret, c.access_token, c.refresh_token) = (a.app_key, a.app_secret, a.access_token, a.refresh_token);
                c.tokens = a.token_lifetime.map(|lifetime| crate::jushuitan::TokenPolicy {
                    lifetime,
                    refresh_window: a.refresh_window.unwrap_or(lifetime / 10),
                    provider: a.provider,
                    answer_delay: Duration::ZERO,
                });
                (c.per_second, c.per_minute) = (a.per_second, a.per_minute);
                c.faults = Faults { http500: f.fault_500, slow: f.fault_slow, reset: f.fault_reset, truncated: a.fault_truncated, slow_delay: f.slow_delay };
                c.mutation = Mutation { changes_per_request: a.mutate, new_per_request: a.new_orders, late_per_request: a.late, late_by: a.late_by };
                c.quirks = a.quirks;
                if a.merchants > 0 {
                    let sim = crate::jushuitan::merchants::start(&c, a.merchants, a.port).await?;
                    println!(
                        "jushuitan simulator on {} with {} merchants (app keys {}-1 to {}-{}; counters at /__sim/merchants, truth at /__sim/merchants/{{k}}/truth)",
                        sim.url, a.merchants, c.app_key, c.app_key, a.merchants
                    );
                    tokio::signal::ctrl_c().await?;
                    sim.stop().await;
                    return anyhow::Ok(());
                }
                let sim = crate::jushuitan::start(c, a.port).await?;
                println!(
                    "jushuitan simulator on {} (POST {}/open/orders/out/simple/query and every object's API, truth at /__sim/truth and /__sim/truth/{{api}})",
                    sim.url, sim.url
                );
                tokio::signal::ctrl_c().await?;
                sim.stop().await;
            }
            SimCommand::Target(a) => {
                let f = &a.common;
                let c = TargetSimConfig {
                    seed: f.seed,
                    faults: TargetFaults {
                        http500: f.fault_500,
                        slow: f.fault_slow,
                        reset: f.fault_reset,
                        apply_then_500: a.fault_apply_then_500,
                        slow_delay: f.slow_delay,
                    },
                    completion_delay: a.completion_delay,
                    refuse_every: a.refuse_every,
                    quirks: a.quirks,
                };
                let sim = crate::target::start(c, a.port).await?;
                println!("command target on {} (PUT {}/{{resource}}/{{uuid}}, truth at /__sim/truth)", sim.url, sim.url);
                tokio::signal::ctrl_c().await?;
                sim.stop().await;
            }
        }
        anyhow::Ok(())
    })
}
