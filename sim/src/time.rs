//! Times as the Jushuitan API writes them: `yyyy-MM-dd HH:mm:ss` in
//! Asia/Shanghai (the simulator's own reading of the facts, not the
//! client's).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::sync::OnceLock;

/// Asia/Shanghai (UTC+8, no daylight saving).
pub fn shanghai() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(8))))
}

/// `2024-03-01 12:30:00` in Asia/Shanghai.
pub fn format(ts: Timestamp) -> String {
    ts.to_zoned(shanghai().clone()).strftime("%Y-%m-%d %H:%M:%S").to_string()
}
