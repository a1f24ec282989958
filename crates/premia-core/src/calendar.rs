//! Dates, periods (calendar months) and the working-day calendar of RULES.md section 7.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Month, Weekday};

/// Parses `YYYY-MM-DD`, a real calendar date, nothing else (no time, no offset, no spaces).
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])? as i32;
    let month = digits(&b[5..7])? as u8;
    let day = digits(&b[8..10])? as u8;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

/// `YYYY-MM-DD`.
pub fn date_text(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// A booking period: one calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    year: i32,
    month: u8,
}

impl Period {
    pub fn of(date: Date) -> Period {
        Period { year: date.year(), month: u8::from(date.month()) }
    }

    /// Parses `YYYY-MM` with month 01-12.
    pub fn parse(text: &str) -> Option<Period> {
        let b = text.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return None;
        }
        let year = digits(&b[0..4])? as i32;
        let month = digits(&b[5..7])? as u8;
        (1..=12).contains(&month).then_some(Period { year, month })
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period { year: self.year + 1, month: 1 }
        } else {
            Period { year: self.year, month: self.month + 1 }
        }
    }

    pub fn previous(self) -> Period {
        if self.month == 1 {
            Period { year: self.year - 1, month: 12 }
        } else {
            Period { year: self.year, month: self.month - 1 }
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A day of the year that recurs, `MM-DD`, for holidays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonthDay {
    pub month: u8,
    pub day: u8,
}

impl MonthDay {
    pub fn parse(text: &str) -> Option<MonthDay> {
        let b = text.as_bytes();
        if b.len() != 5 || b[2] != b'-' {
            return None;
        }
        let month = digits(&b[0..2])? as u8;
        let day = digits(&b[3..5])? as u8;
        // 2024 is a leap year, so 02-29 is accepted (it simply does not occur in other years).
        Date::from_calendar_date(2024, Month::try_from(month).ok()?, day).ok()?;
        Some(MonthDay { month, day })
    }

    fn in_year(self, year: i32) -> Option<Date> {
        Date::from_calendar_date(year, Month::try_from(self.month).ok()?, self.day).ok()
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

fn is_weekday(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The number of Monday-to-Friday days in `[k0, k)` counted from a Monday, for any integer `k`.
fn weekdays_before(day_number: i64) -> i64 {
    // Julian day 0 was a Monday, so day numbers are already aligned to weeks.
    5 * day_number.div_euclid(7) + day_number.rem_euclid(7).min(5)
}

/// The working-day calendar: Monday to Friday, minus holidays (with weekend transfers), minus
/// extra holidays, plus extra workdays, which win over everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    transferable: Vec<MonthDay>,
    fixed: Vec<MonthDay>,
    extra_holidays: BTreeSet<Date>,
    extra_workdays: BTreeSet<Date>,
    /// Per year, the dates whose working status differs from the plain Monday-to-Friday rule,
    /// with `+1` (a working weekend day) or `-1` (a day off on a weekday). Precomputed for the
    /// years business data lives in; other years are computed on demand.
    exceptions: BTreeMap<i32, Vec<(Date, i8)>>,
}

/// Years whose exceptions are precomputed when a calendar is built.
const PRECOMPUTED_YEARS: std::ops::RangeInclusive<i32> = 1990..=2100;

impl Calendar {
    pub fn new(
        transferable: Vec<MonthDay>,
        fixed: Vec<MonthDay>,
        extra_holidays: impl IntoIterator<Item = Date>,
        extra_workdays: impl IntoIterator<Item = Date>,
    ) -> Calendar {
        let mut calendar = Calendar {
            transferable,
            fixed,
            extra_holidays: extra_holidays.into_iter().collect(),
            extra_workdays: extra_workdays.into_iter().collect(),
            exceptions: BTreeMap::new(),
        };
        let exceptions = PRECOMPUTED_YEARS.map(|y| (y, calendar.compute_exceptions(y))).collect();
        calendar.exceptions = exceptions;
        calendar
    }

    /// Holidays of `year` and the days off they move to (which may fall in `year + 1`).
    fn holiday_days_off(&self, year: i32) -> BTreeSet<Date> {
        let mut off: BTreeSet<Date> = BTreeSet::new();
        let mut holidays: BTreeSet<Date> = BTreeSet::new();
        for md in self.fixed.iter().chain(&self.transferable) {
            if let Some(d) = md.in_year(year) {
                holidays.insert(d);
            }
        }
        off.extend(holidays.iter().copied());
        let mut transferable: Vec<Date> = self.transferable.iter().filter_map(|md| md.in_year(year)).collect();
        transferable.sort();
        for holiday in transferable {
            if is_weekday(holiday) {
                continue;
            }
            // The next day that would otherwise be worked becomes a day off.
            let mut candidate = holiday;
            while let Some(next) = candidate.next_day() {
                candidate = next;
                let otherwise_worked = is_weekday(candidate)
                    && !off.contains(&candidate)
                    && !self.extra_holidays.contains(&candidate)
                    && !self.extra_workdays.contains(&candidate);
                if otherwise_worked {
                    off.insert(candidate);
                    break;
                }
            }
        }
        off
    }

    fn compute_exceptions(&self, year: i32) -> Vec<(Date, i8)> {
        let mut candidates: BTreeSet<Date> = BTreeSet::new();
        for y in [year - 1, year] {
            candidates.extend(self.holiday_days_off(y).into_iter().filter(|d| d.year() == year));
        }
        candidates.extend(self.extra_holidays.iter().filter(|d| d.year() == year));
        candidates.extend(self.extra_workdays.iter().filter(|d| d.year() == year));
        let days_off: BTreeSet<Date> =
            [year - 1, year].iter().flat_map(|&y| self.holiday_days_off(y)).filter(|d| d.year() == year).collect();
        candidates
            .into_iter()
            .filter_map(|d| {
                let working = self.extra_workdays.contains(&d)
                    || (is_weekday(d) && !days_off.contains(&d) && !self.extra_holidays.contains(&d));
                let delta = i8::from(working) - i8::from(is_weekday(d));
                (delta != 0).then_some((d, delta))
            })
            .collect()
    }

    fn exceptions_of(&self, year: i32) -> std::borrow::Cow<'_, [(Date, i8)]> {
        match self.exceptions.get(&year) {
            Some(list) => std::borrow::Cow::Borrowed(list.as_slice()),
            None => std::borrow::Cow::Owned(self.compute_exceptions(year)),
        }
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        let exceptions = self.exceptions_of(date.year());
        match exceptions.binary_search_by_key(&date, |(d, _)| *d) {
            Ok(i) => exceptions[i].1 > 0,
            Err(_) => is_weekday(date),
        }
    }

    /// The number of working days `d` with `after < d <= until` (0 when `until <= after`).
    pub fn working_days_between(&self, after: Date, until: Date) -> u32 {
        if until <= after {
            return 0;
        }
        let plain = weekdays_before(i64::from(until.to_julian_day()) + 1)
            - weekdays_before(i64::from(after.to_julian_day()) + 1);
        let mut total = plain;
        for year in after.year()..=until.year() {
            for &(d, delta) in self.exceptions_of(year).iter() {
                if d > after && d <= until {
                    total += i64::from(delta);
                }
            }
        }
        // Each exception is one date with the delta that makes it what it is, so the total is
        // a count of days.
        match u32::try_from(total) {
            Ok(days) => days,
            Err(_) => unreachable!("{total} working days after {after} until {until}: a count is never negative"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn russian() -> Calendar {
        let md = |s: &str| MonthDay::parse(s).unwrap();
        Calendar::new(
            ["02-23", "03-08", "05-01", "05-09", "06-12", "11-04"].map(md).to_vec(),
            (1..=8).map(|d| MonthDay { month: 1, day: d }).collect(),
            [],
            [],
        )
    }

    /// Counts day by day: the obviously correct, slow reference.
    fn count_slowly(c: &Calendar, after: Date, until: Date) -> u32 {
        let mut n = 0;
        let mut d = after;
        while d < until {
            d = d.next_day().unwrap();
            if c.is_working_day(d) {
                n += 1;
            }
        }
        n
    }

    #[test]
    fn parsing() {
        assert_eq!(parse_date("2026-11-04"), Some(date!(2026 - 11 - 04)));
        assert_eq!(parse_date("2026-02-29"), None);
        assert_eq!(parse_date("2024-02-29"), Some(date!(2024 - 02 - 29)));
        for bad in
            ["2026-1-04", "2026-11-4", "20261104", "2026-11-04T00:00", "2026-13-01", "2026-00-10", "abcd-ef-gh", ""]
        {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(Period::parse("2026-11").map(|p| p.to_string()), Some("2026-11".into()));
        for bad in ["2026-13", "2026-00", "2026-1", "2026/11", "26-11"] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
        assert_eq!(Period::parse("2026-12").unwrap().next().to_string(), "2027-01");
        assert_eq!(Period::parse("2027-01").unwrap().previous().to_string(), "2026-12");
    }

    #[test]
    fn the_seed_month_boundary_around_4_november_2026() {
        let c = russian();
        // Due Monday 2 November 2026; 4 November (Wednesday) is a holiday.
        assert!(!c.is_working_day(date!(2026 - 11 - 04)));
        assert_eq!(c.working_days_between(date!(2026 - 11 - 02), date!(2026 - 11 - 17)), 10);
        assert_eq!(c.working_days_between(date!(2026 - 11 - 02), date!(2026 - 11 - 18)), 11);
        // Due Friday 27 November, paid Saturday 28: zero working days late.
        assert_eq!(c.working_days_between(date!(2026 - 11 - 27), date!(2026 - 11 - 28)), 0);
        assert_eq!(c.working_days_between(date!(2026 - 11 - 12), date!(2026 - 11 - 16)), 2);
        assert_eq!(c.working_days_between(date!(2026 - 11 - 16), date!(2026 - 11 - 12)), 0);
    }

    #[test]
    fn weekend_holidays_move_to_the_next_working_day() {
        let c = russian();
        // 9 May 2026 is a Saturday: Monday 11 May is off.
        assert!(!c.is_working_day(date!(2026 - 05 - 11)));
        assert!(c.is_working_day(date!(2026 - 05 - 12)));
        // 8 March 2026 is a Sunday: Monday 9 March is off.
        assert!(!c.is_working_day(date!(2026 - 03 - 09)));
        // 4 November 2028 is a Saturday: Monday 6 November is off.
        assert!(!c.is_working_day(date!(2028 - 11 - 06)));
        // January holidays on a weekend are not moved: 3-4 January 2026 are a weekend, 9 Jan works.
        assert!(c.is_working_day(date!(2026 - 01 - 09)));
        // 31 December 2026 is a working Thursday by default.
        assert!(c.is_working_day(date!(2026 - 12 - 31)));
    }

    #[test]
    fn extras_win() {
        let md = |s: &str| MonthDay::parse(s).unwrap();
        let c = Calendar::new(
            vec![md("11-04")],
            vec![],
            [date!(2026 - 12 - 31)],
            [date!(2026 - 11 - 04), date!(2026 - 11 - 07)],
        );
        assert!(!c.is_working_day(date!(2026 - 12 - 31)));
        assert!(c.is_working_day(date!(2026 - 11 - 04)));
        assert!(c.is_working_day(date!(2026 - 11 - 07))); // a working Saturday
        assert_eq!(c.working_days_between(date!(2026 - 11 - 03), date!(2026 - 11 - 09)), 5);
    }

    #[test]
    fn fast_count_equals_day_by_day_count() {
        let c = russian();
        let start = date!(2025 - 12 - 01).to_julian_day();
        for a in (0..800).step_by(7) {
            for len in [0, 1, 2, 5, 9, 10, 11, 30, 64, 400] {
                let after = Date::from_julian_day(start + a).unwrap();
                let until = Date::from_julian_day(start + a + len).unwrap();
                assert_eq!(c.working_days_between(after, until), count_slowly(&c, after, until), "{after} {until}");
            }
        }
        // Outside the precomputed years too.
        let after = date!(2205 - 12 - 20);
        let until = date!(2206 - 02 - 01);
        assert_eq!(c.working_days_between(after, until), count_slowly(&c, after, until));
    }
}
