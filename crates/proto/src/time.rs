//! Dates as WebDAV writes them: RFC 3339 for `creationdate` (RFC 4918 §15.1).

use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, as RFC 4918 §15.1 wants for creationdate).
pub fn rfc3339(t: SystemTime) -> String {
    let mut s = String::with_capacity(20);
    write_rfc3339(t, &mut s);
    s
}

/// Appends [`rfc3339`] of `t` to `out`.
pub fn write_rfc3339(t: SystemTime, out: &mut String) {
    let (days, rem) = split(t);
    let (y, m, d) = civil_from_days(days);
    push_year(y, out);
    out.push('-');
    push2(m, out);
    out.push('-');
    push2(d, out);
    out.push('T');
    push_clock(rem, out);
    out.push('Z');
}

/// Appends the IMF-fixdate of `t` (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7), as
/// `getlastmodified` carries it. Written by hand: PROPFIND writes one per member.
pub fn write_http_date(t: SystemTime, out: &mut String) {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, rem) = split(t);
    let (y, m, d) = civil_from_days(days);
    out.push_str(WEEKDAYS[days.rem_euclid(7) as usize]);
    out.push_str(", ");
    push2(d, out);
    out.push(' ');
    out.push_str(MONTHS[(m - 1) as usize]);
    out.push(' ');
    push_year(y, out);
    out.push(' ');
    push_clock(rem, out);
    out.push_str(" GMT");
}

/// Days since the epoch and seconds into that day; times before 1970 count as 1970.
fn split(t: SystemTime) -> (i64, u32) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Years past 9999 do not fit either format; clamp to the last second of 9999.
    let secs = secs.min(253_402_300_799) as i64;
    (secs / 86_400, (secs % 86_400) as u32)
}

fn push_clock(rem: u32, out: &mut String) {
    push2(rem / 3600, out);
    out.push(':');
    push2(rem % 3600 / 60, out);
    out.push(':');
    push2(rem % 60, out);
}

fn push2(n: u32, out: &mut String) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

fn push_year(y: i64, out: &mut String) {
    let y = y.clamp(0, 9999) as u32;
    push2(y / 100, out);
    push2(y % 100, out);
}

/// Gregorian date of a day count since 1970-01-01 (proleptic; era-based arithmetic).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_table() {
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_395_269), "2026-11-23T00:54:29Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(at(u64::MAX / 2), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn http_date_matches_httpdate() {
        for secs in [
            0,
            784_111_777,
            951_782_400,
            1_795_395_269,
            4_107_542_399,
            253_402_300_799,
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            let mut ours = String::new();
            write_http_date(t, &mut ours);
            assert_eq!(ours, httpdate::fmt_http_date(t), "{secs}");
        }
        let mut s = String::new();
        write_http_date(UNIX_EPOCH + Duration::from_secs(784_111_777), &mut s);
        assert_eq!(s, "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
