//! Timestamps as engines write them. Docker reports times in RFC 3339 with nanoseconds and, on
//! hosts not set to UTC, a zone offset (`2026-11-30T01:15:17.123456789+01:00`); humantime reads
//! only UTC, so the offset is applied here. Times fleetpin writes are UTC, whole seconds.

use std::time::{Duration, SystemTime};

/// `2026-11-30T00:15:17Z`
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Reads an RFC 3339 time with any fraction and a `Z` or `±HH:MM` zone.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if text.len() < 19 {
        return None;
    }
    let (body, offset_secs) = if let Some(b) = text.strip_suffix('Z') {
        (b, 0i64)
    } else {
        // A zone offset is the last 6 characters: `+01:00`.
        let at = text.len().checked_sub(6)?;
        let zone = text.get(at..)?;
        let sign = match zone.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = zone[1..].split_once(':')?;
        let secs = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
        (&text[..at], sign * secs)
    };
    let utc = humantime::parse_rfc3339_weak(body).ok()?;
    if offset_secs >= 0 {
        utc.checked_sub(Duration::from_secs(offset_secs as u64))
    } else {
        utc.checked_add(Duration::from_secs((-offset_secs) as u64))
    }
}

/// Unix seconds of a time (0 before the epoch).
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The time of unix seconds.
pub fn from_unix(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_times_with_fractions_and_zones() {
        let z = parse_rfc3339("2026-11-30T00:15:17.123456789Z").unwrap();
        assert_eq!(rfc3339(z), "2026-11-30T00:15:17Z");
        let plus = parse_rfc3339("2026-11-30T01:15:17.5+01:00").unwrap();
        assert_eq!(rfc3339(plus), "2026-11-30T00:15:17Z");
        let minus = parse_rfc3339("2026-11-29T19:15:17-05:00").unwrap();
        assert_eq!(rfc3339(minus), "2026-11-30T00:15:17Z");
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            None,
            "before the epoch"
        );
        assert_eq!(unix(from_unix(1_700_000_000)), 1_700_000_000);
    }
}
