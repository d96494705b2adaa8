//! Quota rules: what a plan says of one metric at one moment, and whether an attempt is
//! allowed. Pure functions over a plan and counters, shared by both metering strategies and
//! by `plans simulate`, so that the live meter and the simulator cannot disagree.

use super::periods::{self, Window};
use super::{Per, Plan, Quota};
use chrono::{DateTime, Utc};

/// What a plan says of one metric at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Limit {
        limit: Option<i64>,
        window: Window,
    },
    Credits {
        allowance: i64,
        rollover: bool,
        window: Window,
    },
}

impl Rule {
    /// The window the rule counts over (credits: the grant period).
    pub fn window(&self) -> Window {
        match self {
            Rule::Limit { window, .. } | Rule::Credits { window, .. } => *window,
        }
    }

    /// The credit allowance per period, or `None` for a limit metric.
    pub fn allowance(&self) -> Option<i64> {
        match self {
            Rule::Credits { allowance, .. } => Some(*allowance),
            Rule::Limit { .. } => None,
        }
    }
}

/// The rule of `metric` under `plan` at `now`, or `None` when the catalog does not declare
/// the metric. A metric the catalog declares but the plan leaves out is not included in the
/// plan: a daily limit of zero.
pub fn rule_for(
    plan: &Plan,
    declared: &[String],
    metric: &str,
    now: DateTime<Utc>,
    billing: Window,
) -> Option<Rule> {
    match plan.quotas.get(metric) {
        Some(Quota::Limit { limit, per }) => Some(Rule::Limit {
            limit: *limit,
            window: periods::window(*per, now, billing),
        }),
        Some(Quota::Credits {
            credits,
            per,
            rollover,
        }) => Some(Rule::Credits {
            allowance: *credits,
            rollover: *rollover,
            window: periods::window(*per, now, billing),
        }),
        None if declared.iter().any(|m| m == metric) => Some(Rule::Limit {
            limit: Some(0),
            window: periods::window(Per::Day, now, billing),
        }),
        None => None,
    }
}

/// The window `per` of a metric's quota names (`day` for a metric the plan leaves out).
pub fn per_of(plan: &Plan, metric: &str) -> Per {
    match plan.quotas.get(metric) {
        Some(Quota::Limit { per, .. }) | Some(Quota::Credits { per, .. }) => *per,
        None => Per::Day,
    }
}

/// A credit balance and the start (Unix ms) of the last period it was granted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credits {
    pub balance: i64,
    pub granted_for: i64,
}

impl Credits {
    /// A balance never granted.
    pub const EMPTY: Credits = Credits {
        balance: 0,
        granted_for: i64::MIN,
    };
}

/// A balance after the renewal due at a window's start, and the usage events that renewal
/// writes as (kind, amount): `expire` of the old balance without rollover, then `grant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    pub credits: Credits,
    pub events: Vec<(&'static str, i64)>,
}

impl Renewal {
    /// Whether the renewal changes anything that must be written.
    pub fn is_due(&self, before: Credits) -> bool {
        !self.events.is_empty() || self.credits.balance != before.balance
    }
}

/// Grants `allowance` for `window` unless it was granted already: with `rollover` the
/// allowance is added to what is left, without it what is left expires.
pub fn renew_credits(current: Credits, allowance: i64, rollover: bool, window: Window) -> Renewal {
    let start = window.start.timestamp_millis();
    if current.granted_for >= start {
        return Renewal {
            credits: current,
            events: vec![],
        };
    }
    let mut events = Vec::new();
    let balance = if rollover {
        current.balance + allowance
    } else {
        if current.balance > 0 {
            events.push(("expire", current.balance));
        }
        allowance
    };
    if allowance > 0 {
        events.push(("grant", allowance));
    }
    Renewal {
        credits: Credits {
            balance,
            granted_for: start,
        },
        events,
    }
}

/// Why an attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// `used + amount` would pass `limit`.
    QuotaExceeded { limit: i64, used: i64 },
    /// The balance is smaller than the amount.
    InsufficientCredits { balance: i64 },
}

impl Denial {
    /// The stable error code the refusal is reported with.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::QuotaExceeded { .. } => "quota_exceeded",
            Denial::InsufficientCredits { .. } => "insufficient_credits",
        }
    }
}

/// Counts `amount` against a limit (`None`: unlimited); the new use, or the refusal.
pub fn consume_within(limit: Option<i64>, used: i64, amount: i64) -> Result<i64, Denial> {
    match limit {
        Some(limit) if used + amount > limit => Err(Denial::QuotaExceeded { limit, used }),
        _ => Ok(used + amount),
    }
}

/// Spends `amount` from a balance; the new balance, or the refusal.
pub fn spend_credits(balance: i64, amount: i64) -> Result<i64, Denial> {
    if balance < amount {
        Err(Denial::InsufficientCredits { balance })
    } else {
        Ok(balance - amount)
    }
}

/// The credits "used" in a period, as reported beside the balance.
pub fn credits_used(allowance: i64, balance: i64) -> i64 {
    (allowance - balance).max(0)
}

/// Credits an immediate plan change grants at once: the difference between the new and the
/// old allowance, never negative (a downgrade keeps what was granted).
pub fn plan_change_grant(old: Option<Rule>, new: Rule) -> i64 {
    match new {
        Rule::Credits { allowance, .. } => {
            (allowance - old.and_then(|r| r.allowance()).unwrap_or(0)).max(0)
        }
        Rule::Limit { .. } => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plans::{Interval, Price};
    use std::collections::BTreeMap;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn plan(quotas: &[(&str, Quota)]) -> Plan {
        Plan {
            id: "p".into(),
            name: "P".into(),
            description: String::new(),
            price: Price {
                amount: 0,
                currency: "usd".into(),
                interval: Interval::Month,
            },
            stripe_price_ids: vec![],
            features: BTreeMap::new(),
            quotas: quotas
                .iter()
                .map(|(m, q)| (m.to_string(), q.clone()))
                .collect(),
            rate_limits: BTreeMap::new(),
            trial_days: 0,
            require_verified_email: false,
        }
    }

    fn billing() -> Window {
        Window {
            start: t("2026-03-15T12:00:00Z"),
            end: t("2026-04-15T12:00:00Z"),
        }
    }

    fn declared() -> Vec<String> {
        vec!["calls".into(), "tokens".into(), "exports".into()]
    }

    #[test]
    fn a_daily_limit_counts_in_the_utc_day_and_ends_at_midnight() {
        let p = plan(&[(
            "calls",
            Quota::Limit {
                limit: Some(3),
                per: Per::Day,
            },
        )]);
        let late = rule_for(
            &p,
            &declared(),
            "calls",
            t("2026-03-20T23:59:59Z"),
            billing(),
        );
        let next = rule_for(
            &p,
            &declared(),
            "calls",
            t("2026-03-21T00:00:00Z"),
            billing(),
        );
        let (Some(late), Some(next)) = (late, next) else {
            panic!("calls is declared");
        };
        assert_eq!(late.window().end, t("2026-03-21T00:00:00Z"));
        assert_eq!(next.window().start, late.window().end);
        assert_ne!(late.window(), next.window());
    }

    #[test]
    fn billing_period_quotas_use_the_subscription_period() {
        let p = plan(&[(
            "tokens",
            Quota::Credits {
                credits: 100,
                per: Per::BillingPeriod,
                rollover: false,
            },
        )]);
        let r = rule_for(
            &p,
            &declared(),
            "tokens",
            t("2026-04-01T00:00:00Z"),
            billing(),
        );
        assert_eq!(
            r,
            Some(Rule::Credits {
                allowance: 100,
                rollover: false,
                window: billing()
            })
        );
    }

    #[test]
    fn declared_metric_left_out_of_the_plan_is_a_zero_limit_and_unknown_is_none() {
        let p = plan(&[]);
        let now = t("2026-03-20T10:00:00Z");
        let r = rule_for(&p, &declared(), "exports", now, billing()).unwrap();
        assert!(matches!(r, Rule::Limit { limit: Some(0), .. }));
        assert_eq!(
            consume_within(Some(0), 0, 1),
            Err(Denial::QuotaExceeded { limit: 0, used: 0 })
        );
        assert_eq!(rule_for(&p, &declared(), "nope", now, billing()), None);
        assert_eq!(per_of(&p, "exports"), Per::Day);
    }

    #[test]
    fn a_limit_allows_up_to_the_limit_and_refuses_past_it() {
        assert_eq!(consume_within(Some(3), 2, 1), Ok(3));
        assert_eq!(
            consume_within(Some(3), 3, 1),
            Err(Denial::QuotaExceeded { limit: 3, used: 3 })
        );
        assert_eq!(
            consume_within(Some(3), 1, 5),
            Err(Denial::QuotaExceeded { limit: 3, used: 1 })
        );
    }

    #[test]
    fn unlimited_never_refuses() {
        let p = plan(&[(
            "calls",
            Quota::Limit {
                limit: None,
                per: Per::Month,
            },
        )]);
        let r = rule_for(
            &p,
            &declared(),
            "calls",
            t("2026-03-20T10:00:00Z"),
            billing(),
        )
        .unwrap();
        assert!(matches!(r, Rule::Limit { limit: None, .. }));
        assert_eq!(
            consume_within(None, i64::MAX / 2, 1_000_000),
            Ok(i64::MAX / 2 + 1_000_000)
        );
    }

    #[test]
    fn credits_renew_once_per_window_and_expire_without_rollover() {
        let w = billing();
        let first = renew_credits(Credits::EMPTY, 100, false, w);
        assert_eq!(first.credits.balance, 100);
        assert_eq!(first.events, vec![("grant", 100)]);
        assert!(first.is_due(Credits::EMPTY));
        // Same window again: nothing more.
        let spent = Credits {
            balance: 40,
            ..first.credits
        };
        let again = renew_credits(spent, 100, false, w);
        assert_eq!(again.credits, spent);
        assert!(!again.is_due(spent));
        // Next window: the 40 left expire, 100 are granted.
        let next = Window {
            start: w.end,
            end: t("2026-05-15T12:00:00Z"),
        };
        let renewed = renew_credits(spent, 100, false, next);
        assert_eq!(renewed.credits.balance, 100);
        assert_eq!(renewed.credits.granted_for, next.start.timestamp_millis());
        assert_eq!(renewed.events, vec![("expire", 40), ("grant", 100)]);
    }

    #[test]
    fn credits_with_rollover_add_up_and_spending_stops_at_zero() {
        let w = billing();
        let next = Window {
            start: w.end,
            end: t("2026-05-15T12:00:00Z"),
        };
        let c = Credits {
            balance: 40,
            granted_for: w.start.timestamp_millis(),
        };
        let renewed = renew_credits(c, 100, true, next);
        assert_eq!(renewed.credits.balance, 140);
        assert_eq!(renewed.events, vec![("grant", 100)]);
        assert_eq!(spend_credits(140, 140), Ok(0));
        assert_eq!(
            spend_credits(0, 1),
            Err(Denial::InsufficientCredits { balance: 0 })
        );
        assert_eq!(credits_used(100, 140), 0);
        assert_eq!(credits_used(100, 30), 70);
    }

    #[test]
    fn an_upgrade_mid_window_keeps_the_window_and_grants_the_difference() {
        let now = t("2026-03-20T10:00:00Z");
        let free = plan(&[
            (
                "calls",
                Quota::Limit {
                    limit: Some(10),
                    per: Per::Month,
                },
            ),
            (
                "tokens",
                Quota::Credits {
                    credits: 100,
                    per: Per::BillingPeriod,
                    rollover: false,
                },
            ),
        ]);
        let pro = plan(&[
            (
                "calls",
                Quota::Limit {
                    limit: Some(1000),
                    per: Per::Month,
                },
            ),
            (
                "tokens",
                Quota::Credits {
                    credits: 1000,
                    per: Per::BillingPeriod,
                    rollover: false,
                },
            ),
        ]);
        let old = rule_for(&free, &declared(), "calls", now, billing()).unwrap();
        let new = rule_for(&pro, &declared(), "calls", now, billing()).unwrap();
        // The same window, so the use so far counts against the new limit.
        assert_eq!(old.window(), new.window());
        assert!(consume_within(Some(10), 10, 1).is_err());
        assert_eq!(consume_within(Some(1000), 10, 1), Ok(11));
        let old_t = rule_for(&free, &declared(), "tokens", now, billing());
        let new_t = rule_for(&pro, &declared(), "tokens", now, billing()).unwrap();
        assert_eq!(plan_change_grant(old_t, new_t), 900);
        // A downgrade grants nothing and takes nothing back.
        assert_eq!(plan_change_grant(Some(new_t), old_t.unwrap()), 0);
        // A metric that was not a credit metric before gets the whole allowance.
        assert_eq!(plan_change_grant(None, new_t), 1000);
    }
}
