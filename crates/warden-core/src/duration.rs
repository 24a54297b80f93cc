//! Durations as written in manifests and on the command line: `30s`, `15m`, `24h`, `7d`.

use std::time::Duration;

use crate::error::CoreError;

/// Parses `<n><unit>` with unit `ms`, `s`, `m`, `h` or `d`. Zero and overflow are errors.
pub fn parse_duration(s: &str) -> Result<Duration, CoreError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| CoreError::Duration(s.to_string()))?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| CoreError::Duration(s.to_string()))?;
    let mult_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(CoreError::Duration(s.to_string())),
    };
    let ms = n
        .checked_mul(mult_ms)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| CoreError::Duration(s.to_string()))?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "15",
            "m",
            "15 minutes",
            "0s",
            "-5m",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }
}
