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
    /// 0 for Monday to 6 for Sunday.
    pub weekday: u32,
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

    /// The form of HTTP's `Date` header (RFC 9110, 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub fn http_date(&self) -> String {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            DAYS[self.weekday as usize % 7],
            self.day,
            MONTHS[(self.month as usize + 11) % 12],
            self.year,
            self.hour,
            self.minute,
            self.second
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
            // 1970-01-01 was a Thursday.
            weekday: (days + 3).rem_euclid(7) as u32,
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

    #[test]
    fn http_dates() {
        assert_eq!(at(0, 0).http_date(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            at(784_111_777, 0).http_date(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            at(951_782_400, 0).http_date(),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            at(1_796_324_399, 0).http_date(),
            "Thu, 03 Dec 2026 18:59:59 GMT"
        );
    }
}
