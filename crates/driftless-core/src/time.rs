//! Wall-clock timestamps and human durations, without a date-time dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2026-11-24T04:03:55Z` for a Unix timestamp.
pub fn rfc3339(unix: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20261124T040355Z`: sortable and safe inside a git ref name.
pub fn compact(unix: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Split a Unix timestamp into UTC calendar fields (Howard Hinnant's days-from-civil inverse).
fn civil(unix: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

/// An age as people say it: `45s`, `5m`, `2h10m`, `3d4h`.
pub fn human_age(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// A duration as a user writes it for [`parse_duration`]: in its largest whole unit (`24h`,
/// `90m`, `7d`, `45s`), days only from two on, so `24h` stays `24h`.
pub fn duration_text(duration: Duration) -> String {
    match duration.as_secs() {
        s if s >= 2 * 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Parse `90s`, `15m`, `24h`, `7d`, `1h30m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!("unknown unit `{c}` in duration `{text}` (use s, m, h, d, w)"));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("missing number before `{c}` in `{text}`"))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("`{text}` ends without a unit (use s, m, h, d, w)"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_back_as_written() {
        for text in ["24h", "90m", "7d", "45s", "1h", "0s"] {
            let parsed = parse_duration(text).expect("parses");
            assert_eq!(duration_text(parsed), text);
        }
        assert_eq!(duration_text(Duration::from_secs(86_400)), "24h");
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_320_235), "2026-11-22T04:03:55Z");
        assert_eq!(compact(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("5h3").is_err());
    }
}
