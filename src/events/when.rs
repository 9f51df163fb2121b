//! Times as organisers type them: `2026-12-24 18:30` (or RFC 3339) in a time zone
//! given as an IANA name (`Europe/Berlin`, from chrono-tz's compiled-in zone database,
//! so daylight saving time is that zone's on that date), `UTC`, or a fixed offset like
//! `+01:00`. A wall-clock time that a DST change skips is refused with a reason; one
//! that happens twice (the hour the clocks go back) is its first occurrence.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A time zone an organiser named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

impl Zone {
    /// How the event stores and shows it: the zone's canonical name, or the offset.
    pub fn name(&self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_owned(),
            Zone::Fixed(o) if o.local_minus_utc() == 0 => "UTC".to_owned(),
            Zone::Fixed(o) => o.to_string(),
        }
    }

    fn utc_of(self, naive: &NaiveDateTime) -> LocalResult<DateTime<Utc>> {
        match self {
            Zone::Fixed(o) => o.from_local_datetime(naive).map(|t| t.with_timezone(&Utc)),
            Zone::Named(tz) => tz.from_local_datetime(naive).map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// The zone a `timezone` option names.
pub fn zone(timezone: &str) -> Result<Zone, String> {
    let tz = timezone.trim();
    if ["utc", "z", "gmt"]
        .iter()
        .any(|u| tz.eq_ignore_ascii_case(u))
    {
        return Ok(Zone::Fixed(FixedOffset::east_opt(0).ok_or("bad offset")?));
    }
    let body = tz
        .strip_prefix("UTC")
        .or_else(|| tz.strip_prefix("utc"))
        .unwrap_or(tz);
    match body.as_bytes().first() {
        Some(b'+' | b'-') => fixed(tz, body).map(Zone::Fixed),
        _ => named(tz).map(Zone::Named),
    }
}

fn named(tz: &str) -> Result<Tz, String> {
    tz.parse::<Tz>().map_err(|_| {
        format!(
            "time zone `{tz}` is unknown: give an IANA name like `Europe/Berlin` or `America/New_York` (capitals matter), `UTC`, or an offset like `+01:00`"
        )
    })
}

fn fixed(tz: &str, body: &str) -> Result<FixedOffset, String> {
    let sign = if body.starts_with('-') { -1 } else { 1 };
    let rest = &body[1..];
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = match (h.parse(), m.parse()) {
        (Ok(h), Ok(m)) if (0..=14).contains(&h) && (0..60).contains(&m) => (h, m),
        _ => {
            return Err(format!(
                "time zone `{tz}`: an offset looks like `+01:00` or `-05:30`"
            ));
        }
    };
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
        .ok_or_else(|| format!("time zone `{tz}` is out of range"))
}

/// `text` in `timezone`, as UTC.
pub fn parse(text: &str, timezone: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let zone = zone(timezone)?;
    let naive = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| format!("`{text}`: write a time like `2026-12-24 18:30`"))?;
    match zone.utc_of(&naive) {
        LocalResult::Single(t) => Ok(t),
        // The hour the clocks go back happens twice: the first is meant more often.
        LocalResult::Ambiguous(first, _) => Ok(first),
        LocalResult::None => Err(format!(
            "`{text}` does not exist in {} (the clocks go forward then); pick another time",
            zone.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn local_times_become_utc() {
        assert_eq!(
            parse("2026-12-24 18:30", "UTC"),
            Ok(t("2026-12-24T18:30:00Z"))
        );
        assert_eq!(
            parse("2026-12-24 18:30", "+01:00"),
            Ok(t("2026-12-24T17:30:00Z"))
        );
        assert_eq!(
            parse("2026-12-24T18:30", "UTC-05:30"),
            Ok(t("2026-12-25T00:00:00Z"))
        );
        assert_eq!(
            parse("2026-12-24T18:30:00+02:00", "UTC"),
            Ok(t("2026-12-24T16:30:00Z"))
        );
        assert!(parse("tomorrow", "UTC").is_err());
        assert!(parse("2026-12-24 18:30", "+15:00").is_err());
    }

    #[test]
    fn named_zones_follow_their_daylight_saving_time() {
        // Berlin is UTC+1 in winter and UTC+2 in summer.
        assert_eq!(
            parse("2026-12-24 18:30", "Europe/Berlin"),
            Ok(t("2026-12-24T17:30:00Z"))
        );
        assert_eq!(
            parse("2026-07-01 18:30", "Europe/Berlin"),
            Ok(t("2026-07-01T16:30:00Z"))
        );
        // New York: EDT (UTC-4) before its switch on 1 November 2026, EST (UTC-5) after.
        assert_eq!(
            parse("2026-10-31 12:00", "America/New_York"),
            Ok(t("2026-10-31T16:00:00Z"))
        );
        assert_eq!(
            parse("2026-11-02 12:00", "America/New_York"),
            Ok(t("2026-11-02T17:00:00Z"))
        );
        // A zone without DST, and one with a half-hour offset.
        assert_eq!(
            parse("2026-07-01 09:00", "Asia/Kolkata"),
            Ok(t("2026-07-01T03:30:00Z"))
        );
    }

    #[test]
    fn times_the_clocks_skip_or_repeat() {
        // 29 March 2026: Berlin jumps from 02:00 to 03:00.
        let skipped = parse("2026-03-29 02:30", "Europe/Berlin");
        assert!(
            skipped
                .as_ref()
                .is_err_and(|e| e.contains("does not exist in Europe/Berlin")),
            "{skipped:?}"
        );
        // 25 October 2026: 02:30 happens twice; the first (still summer time, UTC+2).
        assert_eq!(
            parse("2026-10-25 02:30", "Europe/Berlin"),
            Ok(t("2026-10-25T00:30:00Z"))
        );
    }

    #[test]
    fn unknown_zones_say_what_to_type() {
        let e = parse("2026-12-24 18:30", "Mars/Olympus_Mons").expect_err("unknown");
        assert!(e.contains("`Mars/Olympus_Mons` is unknown") && e.contains("Europe/Berlin"));
        assert!(
            zone("europe/berlin").is_err(),
            "IANA names are case-sensitive"
        );
    }

    #[test]
    fn zones_have_one_name_to_store() {
        let name = |z: &str| zone(z).map(|z| z.name());
        assert_eq!(name("Europe/Berlin"), Ok("Europe/Berlin".into()));
        assert_eq!(name(" utc "), Ok("UTC".into()));
        assert_eq!(name("UTC+01:00"), Ok("+01:00".into()));
        assert_eq!(name("-05:30"), Ok("-05:30".into()));
    }
}
