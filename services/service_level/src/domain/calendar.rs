//! Business calendars: working hours per weekday in a time zone, and holidays. SLA clocks count
//! only working time; a 24×7 calendar counts all of it. Local times are turned into instants in
//! the calendar's zone day by day, so daylight saving moves the working hours with the clocks
//! (a working day that loses an hour is an hour shorter).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Working hours of one weekday: minutes from local midnight, `start < end <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// First minute.
    pub start: u32,
    /// Minute it ends (1440: midnight at the end of the day).
    pub end: u32,
}

/// A business calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// The time zone its hours are in.
    pub tz: Tz,
    /// Monday to Sunday; `None`: not a working day.
    pub week: [Option<Hours>; 7],
    /// Days off.
    pub holidays: BTreeSet<NaiveDate>,
}

/// How far ahead a due time is looked for before giving up (ten years).
const HORIZON_DAYS: i64 = 3660;

impl Calendar {
    /// All day, every day, in UTC.
    pub fn always() -> Self {
        Self {
            tz: chrono_tz::UTC,
            week: [Some(Hours {
                start: 0,
                end: 1440,
            }); 7],
            holidays: BTreeSet::new(),
        }
    }

    /// Whether it has any working time at all.
    pub fn works(&self) -> bool {
        self.week.iter().any(Option::is_some)
    }

    /// A local time of `date` as an instant: the first instant at or after it (a time in a
    /// daylight-saving gap moves forward past the gap).
    fn instant(&self, date: NaiveDate, minute: u32) -> DateTime<Utc> {
        let naive: NaiveDateTime = if minute >= 1440 {
            (date + Duration::days(1)).and_time(NaiveTime::MIN)
        } else {
            date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute))
        };
        let mut probe = naive;
        for _ in 0..180 {
            if let Some(at) = self.tz.from_local_datetime(&probe).earliest() {
                return at.with_timezone(&Utc);
            }
            probe += Duration::minutes(1);
        }
        Utc.from_utc_datetime(&naive)
    }

    /// The working interval of the local `date`, as instants, if it is a working day.
    fn day(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holidays.contains(&date) {
            return None;
        }
        let hours = self.week[date.weekday().num_days_from_monday() as usize]?;
        let (start, end) = (
            self.instant(date, hours.start),
            self.instant(date, hours.end),
        );
        (start < end).then_some((start, end))
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Working time between `from` and `to` (zero when `to` is not after `from`).
    pub fn working_time(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        if to <= from {
            return Duration::zero();
        }
        let mut total = Duration::zero();
        // The day before too: a working day may run past midnight UTC.
        let mut date = self.local_date(from) - Duration::days(1);
        let last = self.local_date(to);
        while date <= last {
            if let Some((start, end)) = self.day(date) {
                let (a, b) = (start.max(from), end.min(to));
                if b > a {
                    total += b - a;
                }
            }
            date += Duration::days(1);
        }
        total
    }

    /// The instant at which `amount` of working time has passed since `from`; `None` when the
    /// calendar has no working time within ten years.
    pub fn add(&self, from: DateTime<Utc>, amount: Duration) -> Option<DateTime<Utc>> {
        let mut left = amount;
        let mut date = self.local_date(from) - Duration::days(1);
        let stop = date + Duration::days(HORIZON_DAYS);
        while date <= stop {
            if let Some((start, end)) = self.day(date) {
                let a = start.max(from);
                if end > a {
                    let span = end - a;
                    if left <= span {
                        return Some(a + left);
                    }
                    left -= span;
                }
            }
            date += Duration::days(1);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office(tz: &str) -> Calendar {
        let day = Some(Hours {
            start: 9 * 60,
            end: 17 * 60,
        });
        Calendar {
            tz: tz.parse().unwrap(),
            week: [day, day, day, day, day, None, None],
            holidays: BTreeSet::new(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn working_hours_skip_nights_and_weekends() {
        let cal = office("UTC");
        // Friday 16:00 + 2 working hours = Monday 10:00.
        assert_eq!(
            cal.add(at("2026-11-27T16:00:00Z"), Duration::hours(2)),
            Some(at("2026-11-30T10:00:00Z"))
        );
        assert_eq!(
            cal.working_time(at("2026-11-27T16:00:00Z"), at("2026-11-30T10:00:00Z")),
            Duration::hours(2)
        );
        // Saturday counts nothing.
        assert_eq!(
            cal.working_time(at("2026-11-28T00:00:00Z"), at("2026-11-29T23:59:00Z")),
            Duration::zero()
        );
        // Started at night: counts from 09:00.
        assert_eq!(
            cal.add(at("2026-11-26T03:00:00Z"), Duration::minutes(30)),
            Some(at("2026-11-26T09:30:00Z"))
        );
    }

    #[test]
    fn holidays_are_days_off() {
        let mut cal = office("UTC");
        cal.holidays
            .insert(NaiveDate::from_ymd_opt(2026, 12, 25).unwrap());
        // Thursday 24 Dec 16:00 + 4h: 1h on the 24th, the 25th off, 3h on Monday the 28th.
        assert_eq!(
            cal.add(at("2026-12-24T16:00:00Z"), Duration::hours(4)),
            Some(at("2026-12-28T12:00:00Z"))
        );
    }

    #[test]
    fn hours_are_local_to_the_calendars_zone() {
        let cal = office("America/New_York");
        // 09:00 in New York on 26 Nov 2026 (EST, UTC-5) is 14:00 UTC.
        assert_eq!(
            cal.add(at("2026-11-26T12:00:00Z"), Duration::hours(1)),
            Some(at("2026-11-26T15:00:00Z"))
        );
    }

    #[test]
    fn daylight_saving_moves_the_hours_with_the_clocks() {
        let cal = office("Europe/Paris");
        // Friday 27 March 2026 09:00 Paris is 08:00 UTC (CET); Monday 30 March 09:00 is 07:00 UTC (CEST).
        assert_eq!(
            cal.add(at("2026-03-27T16:00:00Z"), Duration::hours(1)),
            Some(at("2026-03-30T08:00:00Z"))
        );
        assert_eq!(
            cal.working_time(at("2026-03-27T08:00:00Z"), at("2026-03-30T16:00:00Z")),
            Duration::hours(16)
        );
    }

    #[test]
    fn a_24_by_7_calendar_counts_everything_and_a_dst_night_is_an_hour_short() {
        let cal = Calendar::always();
        assert_eq!(
            cal.add(at("2026-11-28T23:00:00Z"), Duration::hours(30)),
            Some(at("2026-11-30T05:00:00Z"))
        );
        let mut paris = Calendar::always();
        paris.tz = "Europe/Paris".parse().unwrap();
        // Sunday 29 March 2026 in Paris lasts 23 hours.
        assert_eq!(
            paris.working_time(at("2026-03-28T23:00:00Z"), at("2026-03-29T22:00:00Z")),
            Duration::hours(23)
        );
    }

    #[test]
    fn a_calendar_without_working_time_has_no_due_time() {
        let cal = Calendar {
            week: [None; 7],
            ..Calendar::always()
        };
        assert!(!cal.works());
        assert_eq!(
            cal.add(at("2026-11-26T12:00:00Z"), Duration::hours(1)),
            None
        );
    }
}
