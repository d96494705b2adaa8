//! Quota windows: calendar day and month in UTC, and a subscription's billing period.

use super::{Interval, Per};
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};

/// A window `[start, end)`.
// Named `PeriodSchema` in the OpenAPI document, as it was when usage periods introduced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PeriodSchema)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// The window of `per` that contains `now`. `billing` is the subscription's current period.
pub fn window(per: Per, now: DateTime<Utc>, billing: Window) -> Window {
    match per {
        Per::Day => {
            let day = now.date_naive();
            Window {
                start: midnight(day),
                end: midnight(day.succ_opt().expect("next day exists")),
            }
        }
        Per::Month => {
            let first =
                NaiveDate::from_ymd_opt(now.year(), now.month(), 1).expect("first of month");
            Window {
                start: midnight(first),
                end: midnight(first + Months::new(1)),
            }
        }
        Per::BillingPeriod => billing,
    }
}

/// Adds `n` billing intervals to an anchor, clamping to the month's end (Jan 31 + 1 month =
/// Feb 28/29), as Stripe does.
pub fn add_intervals(anchor: DateTime<Utc>, interval: Interval, n: u32) -> DateTime<Utc> {
    anchor + Months::new(interval.months() * n)
}

/// The billing period containing `now` for a subscription anchored at `anchor` (its first
/// period's start), for subscriptions Tollgate renews itself (free plans, overrides).
pub fn billing_period_at(anchor: DateTime<Utc>, interval: Interval, now: DateTime<Utc>) -> Window {
    if now < anchor {
        return Window {
            start: anchor,
            end: add_intervals(anchor, interval, 1),
        };
    }
    // Jump close by month arithmetic, then step.
    let months = (now.year() - anchor.year()) * 12 + now.month() as i32 - anchor.month() as i32;
    let mut n = (months.max(0) as u32) / interval.months();
    n = n.saturating_sub(1);
    loop {
        let start = add_intervals(anchor, interval, n);
        let end = add_intervals(anchor, interval, n + 1);
        if now < end {
            return Window { start, end };
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn day_and_month_windows_are_utc_calendar_units() {
        let b = Window {
            start: t("2026-01-01T00:00:00Z"),
            end: t("2026-02-01T00:00:00Z"),
        };
        let w = window(Per::Day, t("2026-03-31T23:59:59Z"), b);
        assert_eq!(
            (w.start, w.end),
            (t("2026-03-31T00:00:00Z"), t("2026-04-01T00:00:00Z"))
        );
        let m = window(Per::Month, t("2026-12-15T10:00:00Z"), b);
        assert_eq!(
            (m.start, m.end),
            (t("2026-12-01T00:00:00Z"), t("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn billing_periods_roll_from_the_anchor() {
        let anchor = t("2026-01-31T12:00:00Z");
        let p = billing_period_at(anchor, Interval::Month, t("2026-03-10T00:00:00Z"));
        assert_eq!(p.start, t("2026-02-28T12:00:00Z"));
        assert_eq!(p.end, t("2026-03-31T12:00:00Z"));
        let y = billing_period_at(anchor, Interval::Year, t("2028-02-01T00:00:00Z"));
        assert_eq!(y.start, t("2028-01-31T12:00:00Z"));
    }
}
