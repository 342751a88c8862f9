//! The scheme's `omissionRemedy`: a schedule that re-reads a past range
//! (the previous day, or a span before the checkpoint) through the normal
//! path, so a row the incremental runs missed (one that became visible
//! after its window was read, say) is found and delivered; idCheck skips
//! everything already delivered, so a remedy costs calls, not writes.
//!
//! `"omissionRemedy": {"every": "1d", "range": "yesterday"}`, or a span:
//! `{"every": "6h", "range": "12h"}` (the 12 hours before the checkpoint).

use jiff::{Timestamp, tz::TimeZone};
use serde::Deserialize;
use std::time::Duration;

/// The block's `omissionRemedy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemedy {
    /// How often (`"1d"`).
    pub every: String,
    /// `yesterday` (the previous calendar day in the source's zone) or a
    /// span before the checkpoint (`"12h"`).
    pub range: String,
}

/// What a remedy re-reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemedyRange {
    /// The previous calendar day, in the source's zone.
    Yesterday,
    /// This long before the checkpoint, up to it.
    Before(Duration),
}

/// A checked remedy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remedy {
    pub every: Duration,
    pub range: RemedyRange,
}

impl RawRemedy {
    /// Checks both keys; errors name them.
    pub fn compile(&self) -> Result<Remedy, String> {
        let every = humantime::parse_duration(&self.every).map_err(|e| format!("metadata.omissionRemedy.every: expected a duration such as \"1d\": {e}"))?;
        if every < Duration::from_secs(1) {
            return Err("metadata.omissionRemedy.every: expected at least 1s".into());
        }
        let range = match self.range.trim() {
            "yesterday" => RemedyRange::Yesterday,
            span => RemedyRange::Before(
                humantime::parse_duration(span)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1))
                    .ok_or_else(|| format!("metadata.omissionRemedy.range: expected \"yesterday\" or a span such as \"12h\", got `{span}`"))?,
            ),
        };
        Ok(Remedy { every, range })
    }
}

impl Remedy {
    /// The range to re-read now, given the checkpoint (none before the
    /// first run, or when the range lies past the checkpoint).
    pub fn range(&self, checkpoint: Option<Timestamp>, zone: &TimeZone) -> Option<(Timestamp, Timestamp)> {
        let checkpoint = checkpoint?;
        let (since, until) = match self.range {
            RemedyRange::Before(span) => (checkpoint - jiff::SignedDuration::try_from(span).ok()?, checkpoint),
            RemedyRange::Yesterday => {
                let today = Timestamp::now().to_zoned(zone.clone()).start_of_day().ok()?;
                let yesterday = today.yesterday().ok()?.start_of_day().ok()?;
                (yesterday.timestamp(), today.timestamp().min(checkpoint))
            }
        };
        (since < until).then_some((since, until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let zone = crate::time::shanghai().clone();
        let span = RawRemedy { every: "1h".into(), range: "2h".into() }.compile().unwrap();
        let c = Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(span.range(Some(c), &zone), Some((c - jiff::SignedDuration::from_hours(2), c)));
        assert_eq!(span.range(None, &zone), None, "nothing before the first run");
        let day = RawRemedy { every: "1d".into(), range: "yesterday".into() }.compile().unwrap();
        let (since, until) = day.range(Some(Timestamp::now()), &zone).unwrap();
        assert_eq!(until.duration_since(since).as_hours(), 24);
        assert_eq!(since.to_zoned(zone).hour(), 0, "midnight in the source's zone");
        let bad = RawRemedy { every: "1d".into(), range: "last week".into() }.compile().unwrap_err();
        assert!(bad.contains("omissionRemedy.range") && bad.contains("last week"), "{bad}");
        assert!(RawRemedy { every: "often".into(), range: "1d".into() }.compile().unwrap_err().contains("omissionRemedy.every"));
    }
}
