//! When the next automatic synchronization runs, from the deployment's
//! EventBridge schedule expression (`SyncSchedule` in the template, handed
//! to the function as `SYNC_SCHEDULE`). Pure: the page passes the time.

use time::{Duration, OffsetDateTime, Time};

/// The forms the page can explain. Anything else is shown as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// `rate(N minute|minutes|hour|hours|day|days)`: EventBridge counts
    /// from when the rule was created, so only the period is known.
    Rate { every: Duration, text: String },
    /// `cron(M H * * ? *)`: daily at a fixed UTC time.
    DailyAt(Time),
    /// An expression of another shape, e.g. weekdays only.
    Other(String),
}

impl Schedule {
    pub fn parse(expression: &str) -> Self {
        let e = expression.trim();
        Self::rate(e)
            .or_else(|| Self::daily_cron(e))
            .unwrap_or_else(|| Self::Other(e.to_owned()))
    }

    fn rate(e: &str) -> Option<Self> {
        let inner = e.strip_prefix("rate(")?.strip_suffix(')')?;
        let (n, unit) = inner.trim().split_once(' ')?;
        let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
        let unit = unit.trim();
        let every = match unit.trim_end_matches('s') {
            "minute" => Duration::minutes(n),
            "hour" => Duration::hours(n),
            "day" => Duration::days(n),
            _ => return None,
        };
        Some(Self::Rate {
            every,
            text: format!("{n} {unit}"),
        })
    }

    fn daily_cron(e: &str) -> Option<Self> {
        let inner = e.strip_prefix("cron(")?.strip_suffix(')')?;
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minute, hour, "*", "*", "?", "*"] = fields.as_slice() else {
            return None;
        };
        Time::from_hms(hour.parse().ok()?, minute.parse().ok()?, 0)
            .ok()
            .map(Self::DailyAt)
    }

    /// The next run after `now`, when the expression fixes it.
    pub fn next_after(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let Self::DailyAt(at) = self else {
            return None;
        };
        let now = now.to_offset(time::UtcOffset::UTC);
        let today = now.replace_time(*at);
        Some(if today > now {
            today
        } else {
            today + Duration::days(1)
        })
    }

    /// How the page says it.
    pub fn describe(&self, now: OffsetDateTime) -> String {
        match (self, self.next_after(now)) {
            (Self::DailyAt(_), Some(next)) => format!(
                "The next automatic synchronization runs at {:04}-{:02}-{:02} {:02}:{:02} UTC (daily).",
                next.year(),
                u8::from(next.month()),
                next.day(),
                next.hour(),
                next.minute()
            ),
            (Self::Rate { text, .. }, _) => format!(
                "Automatic synchronization runs every {text}, counted from when the service was deployed."
            ),
            (_, _) => format!(
                "Automatic synchronization runs on the schedule {}.",
                match self {
                    Self::Other(e) => e.as_str(),
                    _ => "set at deployment",
                }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, time};

    #[test]
    fn a_daily_cron_gives_the_next_run_today_or_tomorrow() {
        let s = Schedule::parse("cron(0 3 * * ? *)");
        assert_eq!(s, Schedule::DailyAt(time!(3:00)));
        assert_eq!(
            s.next_after(datetime!(2026-11-30 02:59 UTC)),
            Some(datetime!(2026-11-30 03:00 UTC))
        );
        assert_eq!(
            s.next_after(datetime!(2026-11-30 03:00 UTC)),
            Some(datetime!(2026-12-01 03:00 UTC))
        );
        assert_eq!(
            s.describe(datetime!(2026-11-30 05:00 UTC)),
            "The next automatic synchronization runs at 2026-12-01 03:00 UTC (daily)."
        );
    }

    #[test]
    fn a_rate_gives_its_period_only() {
        let s = Schedule::parse("rate(1 day)");
        assert!(matches!(s, Schedule::Rate { every, .. } if every == Duration::days(1)));
        assert_eq!(s.next_after(datetime!(2026-11-30 05:00 UTC)), None);
        assert!(
            s.describe(datetime!(2026-11-30 05:00 UTC))
                .contains("every 1 day")
        );
        assert!(
            matches!(Schedule::parse("rate(12 hours)"), Schedule::Rate { every, .. } if every == Duration::hours(12))
        );
    }

    #[test]
    fn other_expressions_are_shown_as_written() {
        for e in [
            "cron(0 3 ? * MON-FRI *)",
            "rate(0 days)",
            "rate(1 fortnight)",
            "cron(99 3 * * ? *)",
        ] {
            assert_eq!(Schedule::parse(e), Schedule::Other(e.to_owned()), "{e}");
        }
    }
}
