//! Ferry's benchmarks, each printed as a ratio against a baseline run in the
//! same process. `cargo bench -p ferry --bench ferry_bench` runs them in
//! full; `-- --quick` shortens them; under `cargo test` they run as a smoke
//! test of a few iterations; `-- e2e ratelimit` runs only the sections
//! named. Results go in BENCHMARKS.md.

mod durability;
mod e2e;
mod idle;
mod languages;
mod mapping;
mod merchants;
mod ratelimit;
mod sandbox;
mod swap;
mod util;
#[cfg(feature = "vrl-baseline")]
mod vrl_baseline;

use util::Scale;

/// One benchmark section, run at a scale.
type Section = fn(&Scale);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let scale = match (benching, quick) {
        (true, false) => Scale { orders: 20_000, rounds: 5, benching, quick },
        (true, true) => Scale { orders: 2_000, rounds: 2, benching, quick },
        (false, _) => Scale { orders: 50, rounds: 1, benching, quick },
    };
    // Optional section names after `--` pick sections: mapping, sandbox, swap,
    // languages, e2e, ratelimit, durability, cores, idle, merchants.
    let only: Vec<&str> = args.iter().skip(1).filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    let on = |name: &str| only.is_empty() || only.contains(&name);
    let sections: [(&str, Section); 10] = [
        ("mapping", mapping::mapping),
        ("sandbox", sandbox::sandbox),
        ("swap", swap::hot_swap),
        ("languages", languages::languages),
        ("e2e", e2e::e2e),
        ("ratelimit", ratelimit::rate_limit),
        ("durability", durability::durability),
        ("cores", e2e::cores),
        ("idle", idle::idle_cost),
        ("merchants", merchants::merchants),
    ];
    for (name, section) in sections {
        if on(name) {
            section(&scale);
        }
    }
}
