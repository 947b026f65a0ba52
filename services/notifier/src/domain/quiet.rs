//! Quiet hours: a recipient's non-urgent notifications wait until their quiet period ends, in
//! their own time zone (daylight saving included).

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Parses `HH:MM`.
pub fn parse_time(raw: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(raw, "%H:%M").ok()
}

/// When a notification created at `now` may go out: `now`, or the end of the quiet period
/// `start`–`end` (local times in `tz`; a period may span midnight) that `now` falls in.
pub fn release_at(now: DateTime<Utc>, tz: Tz, start: NaiveTime, end: NaiveTime) -> DateTime<Utc> {
    if start == end {
        return now;
    }
    let local = now.with_timezone(&tz);
    let time = local.time();
    let date = local.date_naive();
    let quiet = if start < end {
        time >= start && time < end
    } else {
        time >= start || time < end
    };
    if !quiet {
        return now;
    }
    // The end is today when it is still ahead, else tomorrow.
    let end_date = if time < end {
        date
    } else {
        date + Duration::days(1)
    };
    let naive = end_date.and_time(end);
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(at) => at.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        // The end falls in a daylight-saving gap: the first instant after it.
        chrono::LocalResult::None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map_or(now, |at| at.with_timezone(&Utc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn outside_quiet_hours_goes_now() {
        let now = at("2026-11-26T12:00:00Z");
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let r = release_at(
            now,
            tz,
            parse_time("22:00").unwrap(),
            parse_time("07:00").unwrap(),
        );
        assert_eq!(r, now);
    }

    #[test]
    fn quiet_hours_over_midnight_release_at_their_local_end() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let (start, end) = (parse_time("22:00").unwrap(), parse_time("07:00").unwrap());
        // 23:30 in Paris (UTC+1 in November) → 07:00 Paris next day = 06:00 UTC.
        assert_eq!(
            release_at(at("2026-11-26T22:30:00Z"), tz, start, end),
            at("2026-11-27T06:00:00Z")
        );
        // 05:00 in Paris → 07:00 the same day.
        assert_eq!(
            release_at(at("2026-11-27T04:00:00Z"), tz, start, end),
            at("2026-11-27T06:00:00Z")
        );
    }

    #[test]
    fn daylight_saving_moves_the_release_in_utc() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let (start, end) = (parse_time("22:00").unwrap(), parse_time("07:00").unwrap());
        // Night of 28–29 March 2026: clocks go forward at 02:00; 07:00 is then UTC+2.
        assert_eq!(
            release_at(at("2026-03-28T22:00:00Z"), tz, start, end),
            at("2026-03-29T05:00:00Z")
        );
    }

    #[test]
    fn an_end_in_the_gap_moves_past_it() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        // 02:30 does not exist on 29 March 2026 in Paris.
        let r = release_at(
            at("2026-03-28T23:30:00Z"),
            tz,
            parse_time("00:00").unwrap(),
            parse_time("02:30").unwrap(),
        );
        assert_eq!(r, at("2026-03-29T01:30:00Z"));
    }
}
