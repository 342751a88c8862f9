//! Times as the Jushuitan API writes them: `yyyy-MM-dd HH:mm:ss` in the
//! source's zone, Asia/Shanghai unless `source.time_zone` says otherwise
//! (old responses may add `.807` milliseconds). What Ferry shows carries
//! its offset.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use std::sync::OnceLock;

/// Asia/Shanghai (from the bundled tz database; +08:00 without DST).
pub fn shanghai() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(8))))
}

/// `2024-03-01 12:30:00` in Asia/Shanghai.
pub fn format(ts: Timestamp) -> String {
    format_in(ts, shanghai())
}

/// `2024-03-01 12:30:00` in `zone` (the source's).
pub fn format_in(ts: Timestamp, zone: &TimeZone) -> String {
    ts.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// The zone named `name` (IANA, e.g. `Asia/Shanghai`); Asia/Shanghai when none.
pub fn zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        None => Ok(shanghai().clone()),
        Some(n) => TimeZone::get(n).map_err(|_| format!("`{n}` is not a time zone of the IANA database (e.g. `Asia/Shanghai`, `UTC`)")),
    }
}

/// `2024-03-01 12:30:00+08:00`: as the API writes it, with the offset (for
/// people: windows in progress lines and errors).
pub fn display(ts: Timestamp) -> String {
    ts.to_zoned(shanghai().clone()).strftime("%Y-%m-%d %H:%M:%S%:z").to_string()
}

/// RFC 3339 in Asia/Shanghai, with its offset: `2024-03-01T12:30:00+08:00`.
pub fn rfc3339(ts: Timestamp) -> String {
    ts.to_zoned(shanghai().clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// RFC 3339 in UTC with nine fraction digits, so that texts sort as times.
pub fn sortable(ts: Timestamp) -> String {
    format!("{}.{:09}Z", ts.strftime("%Y-%m-%dT%H:%M:%S"), ts.subsec_nanosecond())
}

/// Parses `yyyy-MM-dd HH:mm:ss[.fff]` (Asia/Shanghai), `yyyy-MM-dd`, or an
/// RFC 3339 timestamp.
pub fn parse(text: &str) -> Result<Timestamp, String> {
    parse_in(text, shanghai())
}

/// [`parse`], a time without an offset read in `zone`.
pub fn parse_in(text: &str, zone: &TimeZone) -> Result<Timestamp, String> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| DateTime::strptime(f, t).ok())
        .or_else(|| jiff::civil::Date::strptime("%Y-%m-%d", t).ok().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
        .ok_or_else(|| format!("`{text}` is not a time (expected `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai or RFC 3339)"))?;
    civil.to_zoned(zone.clone()).map(|z| z.timestamp()).map_err(|e| format!("`{text}`: {e}"))
}

/// A time, or a duration before now (`7d`, `12h`: seven days, twelve
/// hours before this moment), as `source.start` accepts it.
pub fn parse_or_ago(text: &str) -> Result<Timestamp, String> {
    parse_or_ago_in(text, shanghai())
}

/// [`parse_or_ago`], a time without an offset read in `zone`.
pub fn parse_or_ago_in(text: &str, zone: &TimeZone) -> Result<Timestamp, String> {
    parse_in(text, zone).or_else(|e| match humantime::parse_duration(text.trim()) {
        Ok(d) => jiff::SignedDuration::try_from(d).ok().and_then(|d| Timestamp::now().checked_sub(d).ok()).ok_or_else(|| format!("`{text}` is too long ago")),
        Err(_) => Err(format!("{e}, or a duration before now like `7d`")),
    })
}

/// Refuses a reversed or empty range, naming both ends (with their offset).
pub fn check_range(since: Option<Timestamp>, until: Option<Timestamp>) -> Result<(), String> {
    match (since, until) {
        (Some(s), Some(u)) if s >= u => Err(format!("the range is reversed or empty: since {} is not before until {}", rfc3339(s), rfc3339(u))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let ts = super::parse("2024-03-01 12:30:00").unwrap();
        assert_eq!(ts.to_string(), "2024-03-01T04:30:00Z");
        assert_eq!(super::format(ts), "2024-03-01 12:30:00");
        assert_eq!(super::parse("2024-03-01 12:30:00.807").unwrap().as_second(), ts.as_second());
        assert!(super::parse("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn the_source_zone_is_a_setting() {
        let ts = super::parse("2024-03-01 12:30:00").unwrap();
        let utc = super::zone(Some("UTC")).unwrap();
        assert_eq!(super::format_in(ts, &utc), "2024-03-01 04:30:00");
        assert_eq!(super::parse_in("2024-03-01 04:30:00", &utc).unwrap(), ts);
        assert_eq!(super::format_in(ts, &super::zone(None).unwrap()), "2024-03-01 12:30:00", "Asia/Shanghai by default");
        assert!(super::zone(Some("Mars/Olympus")).unwrap_err().contains("IANA"));
        assert_eq!(super::display(ts), "2024-03-01 12:30:00+08:00");
    }

    #[test]
    fn ago_and_ranges() {
        let week = super::parse_or_ago("7d").unwrap();
        assert!((jiff::Timestamp::now() - week).get_seconds().abs_diff(7 * 86_400) < 5);
        assert!(super::parse_or_ago("soon").unwrap_err().contains("or a duration before now like `7d`"));
        let (a, b) = (super::parse("2024-03-01 00:00:00").unwrap(), super::parse("2024-03-02 00:00:00").unwrap());
        assert!(super::check_range(Some(a), Some(b)).is_ok());
        let err = super::check_range(Some(b), Some(a)).unwrap_err();
        assert!(err.contains("since 2024-03-02T00:00:00+08:00 is not before until 2024-03-01T00:00:00+08:00"), "{err}");
        assert!(super::check_range(Some(a), Some(a)).is_err(), "empty");
    }
}
