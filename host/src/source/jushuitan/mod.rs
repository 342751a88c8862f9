//! The Jushuitan outbound-order source: signed form requests (`sign`), the
//! seed's metadata templates (`metadata`), window planning (`planner`), one
//! shared rate limiter per app_key (`ratelimit`), retries decided in one
//! place (`retry`), the HTTP client (`client`), paging that misses
//! nothing while orders change (`paging`), rows kept as the text they
//! came in (`row`) and an access token that renews itself (`token`).

pub mod answer;
pub mod client;
pub mod condition;
mod count;
mod fit;
pub mod metadata;
pub mod paging;
pub mod planner;
pub mod profile;
pub mod ratelimit;
pub mod remedy;
pub mod retry;
pub mod row;
pub mod sign;
pub mod token;

pub use client::{ClientConfig, JushuitanClient, Secret, SourceStats};
pub use paging::{Fetched, PagingMode};
pub use planner::{Progress, Window};
pub use retry::{Cause, SourceError};
pub use row::Row;
pub use token::{TokenKeeper, TokenSettings};
