//! Wall-clock time as UTC calendar fields, without a time-zone database.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC date and time to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub milli: u32,
}

impl Utc {
    pub fn now() -> Utc {
        Utc::from(SystemTime::now())
    }

    /// `HH:MM:SS.mmm`
    pub fn time_of_day(&self) -> String {
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            self.hour, self.minute, self.second, self.milli
        )
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{}Z",
            self.year,
            self.month,
            self.day,
            self.time_of_day()
        )
    }
}

impl From<SystemTime> for Utc {
    fn from(t: SystemTime) -> Utc {
        let ms = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        };
        let days = ms.div_euclid(86_400_000);
        let in_day = ms.rem_euclid(86_400_000);
        // Days since 1970-01-01 to a proleptic Gregorian date, by 400-year eras
        // counted from 0000-03-01 so that leap days fall at the end of each year.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (in_day / 3_600_000) as u32,
            minute: (in_day / 60_000 % 60) as u32,
            second: (in_day / 1000 % 60) as u32,
            milli: (in_day % 1000) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, ms: u64) -> Utc {
        Utc::from(UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms))
    }

    #[test]
    fn known_dates() {
        assert_eq!(at(0, 0).rfc3339(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 12:34:56.789 (a leap day in a century leap year)
        assert_eq!(at(951_827_696, 789).rfc3339(), "2000-02-29T12:34:56.789Z");
        // 2026-11-24 21:05:30
        assert_eq!(at(1_795_554_330, 5).rfc3339(), "2026-11-24T21:05:30.005Z");
        assert_eq!(at(4_107_542_399, 999).rfc3339(), "2100-02-28T23:59:59.999Z");
    }
}
