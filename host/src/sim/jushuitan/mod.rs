//! The Jushuitan open-API simulator (`POST /open/orders/out/simple/query`
//! of the new gateway), as `../shared/jushuitan-api.md` describes it:
//! signed form requests, business-parameter checks, the real envelope,
//! per-app rate limits answered with codes 199/200, optional faults and
//! optional mutation of orders while a sync runs, and a ground-truth view.

mod config;
mod limits;
mod orders;
mod query;
mod server;

pub use config::{Faults, JushuitanSimConfig, Mutation};
pub use orders::{Order, OrderItem};
pub use server::{SimState, Stats, Truth, router, start};
