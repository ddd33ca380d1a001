//! Business hours of a queue: a time zone, a weekly schedule and holidays.
//!
//! The core does not know time zones (that needs the tz database, which is I/O): the runtime
//! turns "now" into the queue's local date and time ([`LocalTime`]) and asks
//! [`BusinessHours::is_open`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub tz: String,
    /// Open spans; a day without any is closed. Several spans per day are allowed.
    pub weekly: Vec<Span>,
    /// Closed all day, local dates `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// `mon` … `sun`.
    pub day: String,
    /// `HH:MM`, local time.
    pub open: String,
    /// `HH:MM` (up to `24:00`), later than `open`.
    pub close: String,
}

/// A moment in the queue's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i16,
    pub month: i8,
    pub day: i8,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// Minutes since local midnight.
    pub minute: u16,
}

pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn minutes(hhmm: &str) -> Option<u16> {
    let (h, m) = hhmm.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn date(s: &str) -> Option<(i16, i8, i8)> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i16, i8, i8) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

impl BusinessHours {
    /// Check the schedule; the time zone name is checked by the runtime (it needs the tz
    /// database). The message says what is wrong, for the person who wrote it.
    pub fn validate(&self) -> Result<(), String> {
        if self.tz.trim().is_empty() {
            return Err("hours.tz is required (an IANA time zone such as Europe/Berlin)".into());
        }
        if self.weekly.len() > 100 || self.holidays.len() > 1000 {
            return Err("hours has too many spans or holidays".into());
        }
        for s in &self.weekly {
            if !DAYS.contains(&s.day.as_str()) {
                return Err(format!("hours: day must be one of {} (got {:?})", DAYS.join(", "), s.day));
            }
            let (Some(open), Some(close)) = (minutes(&s.open), minutes(&s.close)) else {
                return Err(format!("hours: times are HH:MM (got {:?}–{:?})", s.open, s.close));
            };
            if open >= close {
                return Err(format!("hours: {} {} must be before {}", s.day, s.open, s.close));
            }
        }
        for h in &self.holidays {
            if date(h).is_none() {
                return Err(format!("hours: holidays are dates YYYY-MM-DD (got {h:?})"));
            }
        }
        Ok(())
    }

    /// Open at this local moment? Spans are [open, close).
    pub fn is_open(&self, at: LocalTime) -> bool {
        let holiday = self.holidays.iter().filter_map(|h| date(h)).any(|d| d == (at.year, at.month, at.day));
        !holiday
            && self.weekly.iter().any(|s| {
                DAYS.get(at.weekday as usize) == Some(&s.day.as_str())
                    && minutes(&s.open).is_some_and(|o| at.minute >= o)
                    && minutes(&s.close).is_some_and(|c| at.minute < c)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours() -> BusinessHours {
        let span =
            |day: &str, open: &str, close: &str| Span { day: day.into(), open: open.into(), close: close.into() };
        BusinessHours {
            tz: "Europe/Berlin".into(),
            weekly: vec![span("mon", "09:00", "12:00"), span("mon", "13:00", "17:30"), span("sat", "10:00", "24:00")],
            holidays: vec!["2026-12-28".into()],
        }
    }

    fn at(day: i8, weekday: u8, h: u16, m: u16) -> LocalTime {
        LocalTime { year: 2026, month: 12, day, weekday, minute: h * 60 + m }
    }

    #[test]
    fn spans_days_and_holidays() {
        let h = hours();
        h.validate().unwrap();
        assert!(!h.is_open(at(21, 0, 8, 59)));
        assert!(h.is_open(at(21, 0, 9, 0)));
        assert!(!h.is_open(at(21, 0, 12, 30)), "lunch");
        assert!(h.is_open(at(21, 0, 17, 29)));
        assert!(!h.is_open(at(21, 0, 17, 30)), "close is exclusive");
        assert!(!h.is_open(at(22, 1, 10, 0)), "tuesday has no span");
        assert!(h.is_open(at(26, 5, 23, 59)), "open until midnight");
        assert!(!h.is_open(at(28, 0, 10, 0)), "holiday");
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let mut h = hours();
        h.weekly[0].day = "monday".into();
        assert!(h.validate().unwrap_err().contains("day must be one of"));
        let mut h = hours();
        h.weekly[0].close = "08:00".into();
        assert!(h.validate().unwrap_err().contains("must be before"));
        let mut h = hours();
        h.weekly[0].open = "9:00".into();
        assert!(h.validate().unwrap_err().contains("HH:MM"));
        let mut h = hours();
        h.weekly[0].close = "24:30".into();
        assert!(h.validate().is_err());
        let mut h = hours();
        h.holidays.push("28.12.2026".into());
        assert!(h.validate().unwrap_err().contains("YYYY-MM-DD"));
        let mut h = hours();
        h.tz = " ".into();
        assert!(h.validate().is_err());
    }
}
