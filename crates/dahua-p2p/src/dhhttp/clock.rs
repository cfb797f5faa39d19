//! The cloud's clock: WSSE `Created` must be close to it, and a `401` with
//! `<Error>TimeOut</Error>` says it is not. The `Date` header of any reply (dh-fwd uses the one
//! of `/probe/p2psrv`) gives the offset to apply to our clock.

use super::message::Response;
use crate::wsse::{days_from_civil, parse_created};

/// Whether a response is the cloud's clock-skew rejection: `401` with `<Error>TimeOut</Error>`
/// (compared case-insensitively).
pub fn is_clock_skew(response: &Response) -> bool {
    response.code == 401
        && response
            .error_text()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("TimeOut"))
}

/// Seconds to add to our clock to match the server's: `server − local`, from a `Date` value
/// (`2023-12-18T19:19:43Z`, an ISO time with an offset, or RFC 1123
/// `Mon, 18 Dec 2023 19:19:43 GMT`) and our unix time when the reply arrived.
pub fn clock_offset(date: &str, local_unix: i64) -> Option<i64> {
    Some(parse_date(date)? - local_unix)
}

/// Unix seconds of a `Date` header value in ISO-8601 or RFC 1123 form.
pub fn parse_date(date: &str) -> Option<i64> {
    parse_created(date).ok().or_else(|| parse_rfc1123(date))
}

/// `Mon, 18 Dec 2023 19:19:43 GMT` (the weekday is optional and not checked).
fn parse_rfc1123(date: &str) -> Option<i64> {
    let s = date.trim();
    let s = s.split_once(',').map_or(s, |(_, rest)| rest).trim();
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    if !matches!(*zone, "GMT" | "UTC" | "Z" | "+0000") {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let day: u32 = day.parse().ok()?;
    // Four digits, like `parse_created`: a larger year overflows the day arithmetic.
    let year: i64 = year.parse().ok().filter(|y| (0..=9999).contains(y))?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_with_a_huge_year_is_unreadable_not_an_overflow() {
        // The year went into the day count unchecked: i64 overflow, a panic in debug builds.
        let huge = "Mon, 18 Dec 9223372036854775807 19:19:43 GMT";
        assert_eq!(parse_date(huge), None);
        assert_eq!(clock_offset(huge, 1_700_000_000), None);
        assert_eq!(parse_date("Mon, 18 Dec 10000 19:19:43 GMT"), None);
        assert_eq!(
            parse_date("Mon, 18 Dec 2023 19:19:43 GMT"),
            Some(1_702_927_183)
        );
    }
}
