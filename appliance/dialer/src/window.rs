//! When a contact may be called: hours and days in the contact's own time zone, minus holidays.
//!
//! A window is one stretch within a day (`09:00-18:00`): outbound calling hours never cross
//! midnight. The end is exclusive. Times are civil times in the contact's zone, so a window
//! follows daylight saving; on the day a clock jumps forward over the start, the window opens
//! at the first instant after the gap.

use crate::Error;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::fmt;

/// A campaign's calling rules in a contact's local time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallingWindow {
    pub start: Time,
    pub end: Time,
    pub days: Days,
    /// Dates (in the contact's zone) when nobody is called.
    pub holidays: Vec<Date>,
}

impl CallingWindow {
    /// `hours` as `HH:MM-HH:MM`, `days` as [`Days::parse`] reads them, `holidays` as a
    /// comma-separated list of `YYYY-MM-DD` (empty for none).
    pub fn parse(hours: &str, days: &str, holidays: &str) -> Result<CallingWindow, Error> {
        let bad = || Error::Window(hours.to_string());
        let (start, end) = hours.split_once('-').ok_or_else(bad)?;
        let time = |s: &str| s.trim().parse::<Time>().map_err(|_| bad());
        let (start, end) = (time(start)?, time(end)?);
        if start >= end {
            return Err(bad());
        }
        let holidays = holidays
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| h.parse::<Date>().map_err(|_| Error::Holiday(h.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(CallingWindow {
            start,
            end,
            days: Days::parse(days)?,
            holidays,
        })
    }

    /// `None` when a contact in `zone` may be called at `now`; otherwise the next instant the
    /// window opens for them (`None` too when it never does: no days allowed).
    pub fn next_opening(&self, now: Timestamp, zone: &TimeZone) -> Opening {
        let local = now.to_zoned_datetime(zone.clone());
        if self.open_on(local.date()) && local.time() >= self.start && local.time() < self.end {
            return Opening::Now;
        }
        let mut date = local.date();
        // Eight days reach every weekday again; holidays can push further, so look a year ahead.
        for _ in 0..=366 {
            if self.open_on(date) {
                if let Ok(at) = date.to_datetime(self.start).to_zoned_datetime(zone.clone()) {
                    if at.timestamp() > now {
                        return Opening::At(at.timestamp());
                    }
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        Opening::Never
    }

    fn open_on(&self, date: Date) -> bool {
        self.days.contains(date.weekday()) && !self.holidays.contains(&date)
    }

    /// The hours as written back (`09:00-18:00`).
    pub fn hours(&self) -> String {
        format!(
            "{}-{}",
            self.start.strftime("%H:%M"),
            self.end.strftime("%H:%M")
        )
    }
}

/// Whether a contact may be called now, or when they next may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    Now,
    At(Timestamp),
    Never,
}

/// A set of weekdays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Days(u8);

const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Days {
    pub const WEEKDAYS: Days = Days(0b001_1111);

    /// `mon-fri`, `mon,wed,sat`, `sat-sun`, `mon-fri,sun`; `daily` for all seven. Case-insensitive.
    pub fn parse(s: &str) -> Result<Days, Error> {
        let bad = || Error::Days(s.to_string());
        let index = |name: &str| {
            NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(name.trim()))
                .ok_or_else(bad)
        };
        if s.trim().eq_ignore_ascii_case("daily") {
            return Ok(Days(0b111_1111));
        }
        let mut bits = 0u8;
        for part in s.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (index(a)?, index(b)?);
                    if a > b {
                        return Err(bad());
                    }
                    (a..=b).for_each(|i| bits |= 1 << i);
                }
                None => bits |= 1 << index(part)?,
            }
        }
        Ok(Days(bits))
    }

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.to_monday_zero_offset()) != 0
    }
}

impl fmt::Display for Days {
    /// The list form `Days::parse` reads back (`mon,tue,wed,thu,fri`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| NAMES[i])
            .collect();
        f.write_str(&names.join(","))
    }
}

/// The zone named `name` in the system's time-zone database.
pub fn zone(name: &str) -> Result<TimeZone, Error> {
    TimeZone::get(name).map_err(|_| Error::TimeZone(name.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window() -> CallingWindow {
        CallingWindow::parse("09:00-18:00", "mon-fri", "2026-12-25").unwrap()
    }

    #[test]
    fn a_contact_is_called_only_within_their_own_hours() {
        let w = window();
        let london = zone("Europe/London").unwrap();
        let new_york = zone("America/New_York").unwrap();
        // Tuesday 2026-12-08 15:00 UTC: 15:00 in London, 10:00 in New York: both open.
        assert_eq!(
            w.next_opening(at("2026-12-08T15:00:00Z"), &london),
            Opening::Now
        );
        assert_eq!(
            w.next_opening(at("2026-12-08T15:00:00Z"), &new_york),
            Opening::Now
        );
        // 19:00 UTC: London is closed until 09:00 tomorrow; New York (14:00) is open.
        assert_eq!(
            w.next_opening(at("2026-12-08T19:00:00Z"), &london),
            Opening::At(at("2026-12-09T09:00:00Z"))
        );
        assert_eq!(
            w.next_opening(at("2026-12-08T19:00:00Z"), &new_york),
            Opening::Now
        );
        // 13:00 UTC is 08:00 in New York: opens at 09:00 local (14:00 UTC).
        assert_eq!(
            w.next_opening(at("2026-12-08T13:00:00Z"), &new_york),
            Opening::At(at("2026-12-08T14:00:00Z"))
        );
    }

    #[test]
    fn the_end_is_exclusive_and_weekends_and_holidays_are_skipped() {
        let w = window();
        let utc = zone("UTC").unwrap();
        // Friday 18:00 → Monday 09:00.
        assert_eq!(
            w.next_opening(at("2026-12-11T18:00:00Z"), &utc),
            Opening::At(at("2026-12-14T09:00:00Z"))
        );
        // Thursday 24 Dec after hours → not Friday 25 (a holiday) → Monday 28.
        assert_eq!(
            w.next_opening(at("2026-12-24T20:00:00Z"), &utc),
            Opening::At(at("2026-12-28T09:00:00Z"))
        );
    }

    #[test]
    fn windows_follow_daylight_saving() {
        let w = CallingWindow::parse("09:00-17:00", "daily", "").unwrap();
        let paris = zone("Europe/Paris").unwrap();
        // Winter: 09:00 in Paris is 08:00 UTC; summer: 07:00 UTC.
        assert_eq!(
            w.next_opening(at("2026-01-10T06:00:00Z"), &paris),
            Opening::At(at("2026-01-10T08:00:00Z"))
        );
        assert_eq!(
            w.next_opening(at("2026-07-10T06:00:00Z"), &paris),
            Opening::At(at("2026-07-10T07:00:00Z"))
        );
        // A window that starts inside the spring-forward gap opens when the clock lands.
        let early = CallingWindow::parse("02:30-05:00", "daily", "").unwrap();
        assert_eq!(
            early.next_opening(at("2026-03-29T00:00:00Z"), &paris),
            Opening::At(at("2026-03-29T01:30:00Z"))
        );
    }

    #[test]
    fn rules_are_read_strictly() {
        assert_eq!(Days::parse("mon-fri").unwrap(), Days::WEEKDAYS);
        assert_eq!(
            Days::parse("Mon-Wed,sat").unwrap().to_string(),
            "mon,tue,wed,sat"
        );
        assert!(Days::parse("fri-mon").is_err());
        assert!(Days::parse("weekdays").is_err());
        assert!(CallingWindow::parse("18:00-09:00", "daily", "").is_err());
        assert!(CallingWindow::parse("9-17", "daily", "").is_err());
        assert!(CallingWindow::parse("09:00-17:00", "daily", "25/12").is_err());
        assert!(zone("Mars/Olympus").is_err());
        let w = CallingWindow::parse("09:00-17:30", "mon-fri", "").unwrap();
        assert_eq!(w.hours(), "09:00-17:30");
        let never = CallingWindow { days: Days(0), ..w };
        assert_eq!(
            never.next_opening(at("2026-12-08T10:00:00Z"), &zone("UTC").unwrap()),
            Opening::Never
        );
    }
}
