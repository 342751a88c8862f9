//! Ferry's benchmarks, each printed as a ratio against a baseline run in the
//! same process. `cargo bench -p ferry --bench ferry_bench` runs them in
//! full; `-- --quick` shortens them; under `cargo test` they run as a smoke
//! test of a few iterations. Results go in BENCHMARKS.md.

mod e2e;
mod languages;
mod mapping;
mod ratelimit;
mod sandbox;
mod swap;
mod util;
#[cfg(feature = "vrl-baseline")]
mod vrl_baseline;

use util::Scale;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let scale = match (benching, quick) {
        (true, false) => Scale { orders: 20_000, rounds: 5, benching, quick },
        (true, true) => Scale { orders: 2_000, rounds: 2, benching, quick },
        (false, _) => Scale { orders: 50, rounds: 1, benching, quick },
    };
    mapping::mapping(&scale);
    sandbox::sandbox(&scale);
    swap::hot_swap(&scale);
    languages::languages(&scale);
    e2e::e2e(&scale);
    ratelimit::rate_limit(&scale);
}
