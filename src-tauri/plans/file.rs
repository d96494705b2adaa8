//! Reading and checking a plan file. Every problem is reported with its line and column and a
//! plain sentence; a file with any error is never applied.

use super::{Catalog, Interval, Per, Plan, Price, Quota, RateLimit};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// Rate-limit scopes every catalog knows.
pub const BUILTIN_SCOPES: [&str; 3] = ["api", "login", "register"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// The outcome of checking a file: the catalog when it is sound, and every problem found.
#[derive(Debug)]
pub struct CheckReport {
    pub catalog: Option<Catalog>,
    pub errors: Vec<Problem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    metrics: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    features: Vec<Spanned<String>>,
    #[serde(default)]
    scopes: Vec<Spanned<String>>,
    default_plan: Option<Spanned<String>>,
    /// Feature dependencies: `qa = ["vision"]` means a plan with `qa` must also have `vision`.
    #[serde(default)]
    requires: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    anonymous_rate_limits: BTreeMap<Spanned<String>, Spanned<RawRateLimit>>,
    #[serde(default)]
    plans: Vec<Spanned<RawPlan>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    id: Spanned<String>,
    name: Option<String>,
    #[serde(default)]
    description: String,
    price: Spanned<RawPrice>,
    #[serde(default)]
    stripe_price_ids: Vec<Spanned<String>>,
    #[serde(default)]
    features: BTreeMap<Spanned<String>, bool>,
    #[serde(default)]
    quotas: BTreeMap<Spanned<String>, Spanned<RawQuota>>,
    #[serde(default)]
    rate_limits: BTreeMap<Spanned<String>, Spanned<RawRateLimit>>,
    trial_days: Option<Spanned<i64>>,
    #[serde(default)]
    credits_rollover: bool,
    #[serde(default)]
    require_verified_email: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    amount: Spanned<i64>,
    #[serde(default = "usd")]
    currency: Spanned<String>,
    interval: Spanned<String>,
}

fn usd() -> Spanned<String> {
    Spanned::new(0..0, "usd".to_owned())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    limit: Option<Spanned<toml::Value>>,
    credits: Option<Spanned<i64>>,
    per: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    requests: Spanned<i64>,
    window: Spanned<String>,
}

/// Line and column (both from 1) of a byte offset.
fn position(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

struct Checker<'a> {
    src: &'a str,
    errors: Vec<Problem>,
}

impl Checker<'_> {
    fn err(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = position(self.src, span.start);
        self.errors.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }
}

/// Parses a window such as `30s`, `15m`, `1h` or `1d` into seconds.
pub fn parse_window(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    };
    (n > 0).then_some(n * secs)
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Reads a catalog, or returns every problem found.
pub fn parse(src: &str) -> Result<Catalog, Vec<Problem>> {
    let report = check(src);
    match report.catalog {
        Some(c) if report.errors.is_empty() => Ok(c),
        _ => Err(report.errors),
    }
}

/// Checks a plan file and reports every problem.
pub fn check(src: &str) -> CheckReport {
    let raw: RawCatalog = match toml::from_str(src) {
        Ok(r) => r,
        Err(e) => {
            let (line, column) = e.span().map(|s| position(src, s.start)).unwrap_or((1, 1));
            let message = e.message().trim().to_owned();
            return CheckReport {
                catalog: None,
                errors: vec![Problem {
                    line,
                    column,
                    message,
                }],
            };
        }
    };
    let mut c = Checker {
        src,
        errors: Vec::new(),
    };

    let mut metrics = Vec::new();
    for m in raw.metrics.get_ref() {
        if !valid_id(m.get_ref()) {
            c.err(
                m.span(),
                format!(
                    "metric `{}` must be lowercase letters, digits, `_` or `-`",
                    m.get_ref()
                ),
            );
        } else if metrics.contains(m.get_ref()) {
            c.err(
                m.span(),
                format!("metric `{}` is declared twice", m.get_ref()),
            );
        } else {
            metrics.push(m.get_ref().clone());
        }
    }
    if raw.metrics.get_ref().is_empty() {
        c.err(
            raw.metrics.span(),
            "declare at least one metric, such as metrics = [\"requests\"]",
        );
    }
    let mut features = Vec::new();
    for f in &raw.features {
        if !valid_id(f.get_ref()) || features.contains(f.get_ref()) {
            c.err(
                f.span(),
                format!("feature `{}` is not a valid, unique name", f.get_ref()),
            );
        } else {
            features.push(f.get_ref().clone());
        }
    }
    let mut scopes: HashSet<String> = BUILTIN_SCOPES.iter().map(|s| s.to_string()).collect();
    scopes.extend(metrics.iter().cloned());
    for s in &raw.scopes {
        if !valid_id(s.get_ref()) {
            c.err(
                s.span(),
                format!(
                    "scope `{}` must be lowercase letters, digits, `_` or `-`",
                    s.get_ref()
                ),
            );
        }
        scopes.insert(s.get_ref().clone());
    }
    for (feature, needs) in &raw.requires {
        if !features.contains(feature.get_ref()) {
            c.err(
                feature.span(),
                format!(
                    "`requires` names an undeclared feature `{}`",
                    feature.get_ref()
                ),
            );
        }
        for n in needs {
            if !features.contains(n.get_ref()) {
                c.err(
                    n.span(),
                    format!(
                        "feature `{}` requires an undeclared feature `{}`",
                        feature.get_ref(),
                        n.get_ref()
                    ),
                );
            }
        }
    }
    let mut anonymous = BTreeMap::new();
    for (scope, rl) in &raw.anonymous_rate_limits {
        if !matches!(
            scope.get_ref().as_str(),
            "login" | "register" | "password_reset"
        ) && !scopes.contains(scope.get_ref())
        {
            c.err(
                scope.span(),
                format!(
                    "anonymous rate limit for unknown scope `{}`",
                    scope.get_ref()
                ),
            );
        }
        if let Some(r) = rate_limit(&mut c, scope.get_ref(), rl) {
            anonymous.insert(scope.get_ref().clone(), r);
        }
    }

    let mut plans: Vec<Plan> = Vec::new();
    let mut seen_ids: HashMap<String, Range<usize>> = HashMap::new();
    let mut seen_prices: HashMap<String, String> = HashMap::new();
    for sp in &raw.plans {
        let p = sp.get_ref();
        let id = p.id.get_ref().clone();
        if !valid_id(&id) {
            c.err(
                p.id.span(),
                format!("plan id `{id}` must be lowercase letters, digits, `_` or `-`"),
            );
        }
        if seen_ids.insert(id.clone(), p.id.span()).is_some() {
            c.err(
                p.id.span(),
                format!("duplicate plan id `{id}`: each plan id may appear once"),
            );
        }
        let price = p.price.get_ref();
        let amount = *price.amount.get_ref();
        if amount < 0 {
            c.err(price.amount.span(), format!("plan `{id}` has a negative price ({amount}); prices are integer cents, 0 or more"));
        }
        let currency = price.currency.get_ref().to_lowercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            c.err(
                price.currency.span(),
                format!(
                    "plan `{id}`: currency `{}` is not a three-letter ISO code",
                    price.currency.get_ref()
                ),
            );
        }
        let interval = match price.interval.get_ref().as_str() {
            "month" => Interval::Month,
            "year" => Interval::Year,
            other => {
                c.err(
                    price.interval.span(),
                    format!("plan `{id}`: interval `{other}` must be \"month\" or \"year\""),
                );
                Interval::Month
            }
        };
        if amount > 0 && p.stripe_price_ids.is_empty() {
            c.err(p.price.span(), format!("plan `{id}` is paid but has no Stripe price: add stripe_price_ids = [\"price_…\"]"));
        }
        for sid in &p.stripe_price_ids {
            if !sid.get_ref().starts_with("price_") {
                c.err(
                    sid.span(),
                    format!(
                        "plan `{id}`: `{}` does not look like a Stripe price id (price_…)",
                        sid.get_ref()
                    ),
                );
            }
            if let Some(other) = seen_prices.insert(sid.get_ref().clone(), id.clone()) {
                c.err(sid.span(), format!("Stripe price `{}` is used by plans `{other}` and `{id}`; a price must map to one plan", sid.get_ref()));
            }
        }
        let mut plan_features = BTreeMap::new();
        for f in &features {
            plan_features.insert(f.clone(), false);
        }
        for (f, on) in &p.features {
            if !features.contains(f.get_ref()) {
                c.err(
                    f.span(),
                    format!(
                        "plan `{id}` sets an undeclared feature `{}` (declared: {})",
                        f.get_ref(),
                        features.join(", ")
                    ),
                );
            }
            plan_features.insert(f.get_ref().clone(), *on);
        }
        for (feature, needs) in &raw.requires {
            if plan_features
                .get(feature.get_ref())
                .copied()
                .unwrap_or(false)
            {
                for n in needs {
                    if !plan_features.get(n.get_ref()).copied().unwrap_or(false) {
                        c.err(
                            p.id.span(),
                            format!(
                                "plan `{id}` has `{}`, which depends on `{}`, but not `{}`",
                                feature.get_ref(),
                                n.get_ref(),
                                n.get_ref()
                            ),
                        );
                    }
                }
            }
        }
        let mut quotas = BTreeMap::new();
        for (metric, q) in &p.quotas {
            if !metrics.contains(metric.get_ref()) {
                c.err(
                    metric.span(),
                    format!(
                        "plan `{id}` sets a quota on unknown metric `{}` (declared: {})",
                        metric.get_ref(),
                        metrics.join(", ")
                    ),
                );
                continue;
            }
            if let Some(quota) = quota(&mut c, &id, metric.get_ref(), q, p.credits_rollover) {
                quotas.insert(metric.get_ref().clone(), quota);
            }
        }
        let mut limits = BTreeMap::new();
        for (scope, rl) in &p.rate_limits {
            if !scopes.contains(scope.get_ref()) {
                c.err(
                    scope.span(),
                    format!(
                        "plan `{id}` sets a rate limit on unknown metric or scope `{}` (known: api, login, register, {})",
                        scope.get_ref(),
                        metrics.join(", ")
                    ),
                );
                continue;
            }
            if let Some(r) = rate_limit(&mut c, scope.get_ref(), rl) {
                limits.insert(scope.get_ref().clone(), r);
            }
        }
        let trial_days = match &p.trial_days {
            Some(t) if !(0..=365).contains(t.get_ref()) => {
                c.err(
                    t.span(),
                    format!("plan `{id}`: trial_days must be between 0 and 365"),
                );
                0
            }
            Some(t) => *t.get_ref() as u32,
            None => 0,
        };
        plans.push(Plan {
            name: p.name.clone().unwrap_or_else(|| id.clone()),
            id,
            description: p.description.clone(),
            price: Price {
                amount,
                currency,
                interval,
            },
            stripe_price_ids: p
                .stripe_price_ids
                .iter()
                .map(|s| s.get_ref().clone())
                .collect(),
            features: plan_features,
            quotas,
            rate_limits: limits,
            trial_days,
            require_verified_email: p.require_verified_email,
        });
    }
    if raw.plans.is_empty() {
        c.err(
            0..0,
            "the catalog has no plans: add at least one [[plans]] table",
        );
    }
    let default_plan = match &raw.default_plan {
        Some(d) => {
            match plans.iter().find(|p| &p.id == d.get_ref()) {
                None => c.err(
                    d.span(),
                    format!(
                        "default_plan `{}` is not a plan of this catalog",
                        d.get_ref()
                    ),
                ),
                Some(p) if !p.is_free() => c.err(
                    d.span(),
                    format!(
                        "default_plan `{}` must be free: every new account starts on it",
                        d.get_ref()
                    ),
                ),
                Some(_) => {}
            }
            d.get_ref().clone()
        }
        None => match plans.iter().find(|p| p.is_free()) {
            Some(p) => p.id.clone(),
            None => {
                c.err(
                    0..0,
                    "the catalog needs a free plan for new accounts (or set default_plan)",
                );
                String::new()
            }
        },
    };
    let catalog = Catalog {
        metrics,
        features,
        default_plan,
        anonymous_rate_limits: anonymous,
        plans,
    };
    CheckReport {
        catalog: c.errors.is_empty().then_some(catalog),
        errors: c.errors,
    }
}

fn quota(
    c: &mut Checker<'_>,
    plan: &str,
    metric: &str,
    q: &Spanned<RawQuota>,
    rollover: bool,
) -> Option<Quota> {
    let raw = q.get_ref();
    let per = match raw.per.get_ref().as_str() {
        "day" => Per::Day,
        "month" => Per::Month,
        "billing_period" => Per::BillingPeriod,
        other => {
            c.err(raw.per.span(), format!("plan `{plan}`, metric `{metric}`: per = \"{other}\" must be \"day\", \"month\" or \"billing_period\""));
            return None;
        }
    };
    match (&raw.limit, &raw.credits) {
        (Some(_), Some(_)) => {
            c.err(q.span(), format!("plan `{plan}`, metric `{metric}`: a quota is either a limit or credits, not both"));
            None
        }
        (None, None) => {
            c.err(q.span(), format!("plan `{plan}`, metric `{metric}`: give limit = N, limit = \"unlimited\" or credits = N"));
            None
        }
        (Some(limit), None) => match limit.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Some(Quota::Limit {
                limit: Some(*n),
                per,
            }),
            toml::Value::String(s) if s == "unlimited" => Some(Quota::Limit { limit: None, per }),
            _ => {
                c.err(limit.span(), format!("plan `{plan}`, metric `{metric}`: limit must be a whole number of 0 or more, or \"unlimited\""));
                None
            }
        },
        (None, Some(credits)) => {
            if *credits.get_ref() < 0 {
                c.err(
                    credits.span(),
                    format!("plan `{plan}`, metric `{metric}`: credits must be 0 or more"),
                );
                return None;
            }
            if per == Per::Day {
                c.err(raw.per.span(), format!("plan `{plan}`, metric `{metric}`: credits are granted per \"billing_period\" or \"month\""));
                return None;
            }
            Some(Quota::Credits {
                credits: *credits.get_ref(),
                per,
                rollover,
            })
        }
    }
}

fn rate_limit(c: &mut Checker<'_>, scope: &str, rl: &Spanned<RawRateLimit>) -> Option<RateLimit> {
    let raw = rl.get_ref();
    let requests = *raw.requests.get_ref();
    if requests <= 0 {
        c.err(
            raw.requests.span(),
            format!("rate limit `{scope}`: requests must be 1 or more"),
        );
        return None;
    }
    match parse_window(raw.window.get_ref()) {
        Some(window_secs) => Some(RateLimit {
            requests,
            window_secs,
        }),
        None => {
            c.err(
                raw.window.span(),
                format!(
                    "rate limit `{scope}`: window `{}` must look like 30s, 15m, 1h or 1d",
                    raw.window.get_ref()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_window("1h"), Some(3600));
        assert_eq!(parse_window("15m"), Some(900));
        assert_eq!(parse_window("2d"), Some(172_800));
        assert_eq!(parse_window("0h"), None);
        assert_eq!(parse_window("h"), None);
        assert_eq!(parse_window("1w"), None);
    }

    #[test]
    fn positions_count_from_one() {
        assert_eq!(position("ab\ncd", 0), (1, 1));
        assert_eq!(position("ab\ncd", 4), (2, 2));
    }
}
