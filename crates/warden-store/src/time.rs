//! Wall-clock time as Unix milliseconds and RFC 3339 UTC text, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `(year, month, day)` of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-11-23T09:40:30.123Z`. Written digit by digit: every audit record takes one, on
/// the call's path.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        );
    }
    let y = y as u32;
    let mut b = [0u8; 24];
    let mut put = |at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, sod / 3600, 2);
    put(14, (sod % 3600) / 60, 2);
    put(17, sod % 60, 2);
    put(20, milli, 3);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        b[at] = c;
    }
    String::from_utf8(b.to_vec()).expect("ASCII")
}

/// ISO weekday (1 = Monday … 7 = Sunday) and hour (UTC) of a Unix-ms time.
pub fn weekday_hour(ms: i64) -> (u32, u32) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    // 1970-01-01 was a Thursday (ISO 4).
    let wd = ((days + 3).rem_euclid(7) + 1) as u32;
    (wd, (secs.rem_euclid(86_400) / 3600) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29T12:34:56.789Z, a leap day, computed independently: 951827696 s.
        assert_eq!(rfc3339(951_827_696_789), "2000-02-29T12:34:56.789Z");
        assert_eq!(weekday_hour(0), (4, 0));
        // 2026-11-23 is a Monday.
        assert_eq!(weekday_hour(1_795_435_200_000).0, 1);
    }

    #[test]
    fn digit_writer_agrees_with_format_across_the_range() {
        let reference = |ms: i64| {
            let secs = ms.div_euclid(1000);
            let sod = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                sod / 3600,
                (sod % 3600) / 60,
                sod % 60,
                ms.rem_euclid(1000)
            )
        };
        // From before 1970 to past year 9999 (the fallback), in uneven steps.
        let mut ms: i64 = -62_000_000_000_000;
        while ms < 260_000_000_000_000 {
            assert_eq!(rfc3339(ms), reference(ms), "at {ms}");
            ms += 97_654_321_987;
        }
        assert_eq!(rfc3339(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }
}
