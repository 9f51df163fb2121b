//! Times as organisers type them: `2026-12-24 18:30` (or RFC 3339) in a time zone
//! given as `UTC` or an offset like `+01:00`. Named zones (`Europe/Berlin`) need the
//! zone database, which guildops does not ship yet; the error says what to type.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

/// The offset a `timezone` option names.
pub fn offset(timezone: &str) -> Result<FixedOffset, String> {
    let tz = timezone.trim();
    if tz.eq_ignore_ascii_case("utc")
        || tz.eq_ignore_ascii_case("z")
        || tz.eq_ignore_ascii_case("gmt")
    {
        return FixedOffset::east_opt(0).ok_or_else(|| "bad offset".into());
    }
    let body = tz
        .strip_prefix("UTC")
        .or_else(|| tz.strip_prefix("utc"))
        .unwrap_or(tz);
    let (sign, rest) = match body.as_bytes().first() {
        Some(b'+') => (1, &body[1..]),
        Some(b'-') => (-1, &body[1..]),
        _ => {
            return Err(format!(
                "time zone `{tz}`: give `UTC` or an offset like `+01:00` (named zones are not supported yet)"
            ));
        }
    };
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
    let offset = offset(timezone)?;
    let naive = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| format!("`{text}`: write a time like `2026-12-24 18:30`"))?;
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("`{text}` does not exist in {timezone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_become_utc() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
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
        assert!(parse("2026-12-24 18:30", "Europe/Berlin").is_err());
        assert!(parse("2026-12-24 18:30", "+15:00").is_err());
    }
}
