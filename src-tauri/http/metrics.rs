//! Prometheus metrics: requests by route and status, meter decisions, request latency.

use crate::service::rate_limits::RateLimitBackend;
use crate::service::traffic::{ErrorCount, RequestCounts};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds of request counts kept for the rate.
const RATE_WINDOW_SECS: u64 = 10;

const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// route → method → status → count (looked up without allocating once a route is known).
    requests: BTreeMap<String, BTreeMap<String, BTreeMap<u16, u64>>>,
    decisions: BTreeMap<(String, String), u64>,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    /// Error answers by their `error.code`.
    error_codes: BTreeMap<String, u64>,
    /// Requests per second (unix second, count), the last [`RATE_WINDOW_SECS`] seconds.
    recent: VecDeque<(u64, u64)>,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Inner {
    fn forget_before(&mut self, now: u64) {
        while self
            .recent
            .front()
            .is_some_and(|(s, _)| *s + RATE_WINDOW_SECS <= now)
        {
            self.recent.pop_front();
        }
    }
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut m = self.inner.lock().expect("metrics lock");
        if !m.requests.contains_key(route) {
            m.requests.insert(route.to_owned(), BTreeMap::new());
        }
        let by_method = m.requests.get_mut(route).expect("inserted above");
        if !by_method.contains_key(method) {
            by_method.insert(method.to_owned(), BTreeMap::new());
        }
        *by_method
            .get_mut(method)
            .expect("inserted above")
            .entry(status)
            .or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                m.latency_buckets[i] += 1;
            }
        }
        m.latency_count += 1;
        m.latency_sum += seconds;
        let now = unix_secs();
        match m.recent.back_mut() {
            Some((s, n)) if *s == now => *n += 1,
            _ => m.recent.push_back((now, 1)),
        }
        m.forget_before(now);
    }

    /// An error answer's `error.code`.
    pub fn record_error(&self, code: &str) {
        let mut m = self.inner.lock().expect("metrics lock");
        if let Some(n) = m.error_codes.get_mut(code) {
            *n += 1;
        } else {
            m.error_codes.insert(code.to_owned(), 1);
        }
    }

    /// The counters the console's API screen shows (the same ones [`Metrics::render`] writes).
    pub fn counts(&self) -> RequestCounts {
        let mut m = self.inner.lock().expect("metrics lock");
        let now = unix_secs();
        m.forget_before(now);
        let recent: u64 = m.recent.iter().map(|(_, n)| n).sum();
        let mut by_status: BTreeMap<u16, u64> = BTreeMap::new();
        for by_method in m.requests.values() {
            for by_status_of_method in by_method.values() {
                for (status, n) in by_status_of_method {
                    *by_status.entry(*status).or_default() += n;
                }
            }
        }
        RequestCounts {
            requests: by_status.values().sum::<u64>() as i64,
            requests_per_second: recent as f64 / RATE_WINDOW_SECS as f64,
            errors_by_status: by_status
                .into_iter()
                .filter(|(s, _)| *s >= 400)
                .map(|(s, n)| ErrorCount {
                    key: s.to_string(),
                    count: n as i64,
                })
                .collect(),
            errors_by_code: m
                .error_codes
                .iter()
                .map(|(c, n)| ErrorCount {
                    key: c.clone(),
                    count: *n as i64,
                })
                .collect(),
        }
    }

    /// A metering decision: `allowed`, or the refusal's code.
    pub fn record_decision(&self, metric: &str, outcome: &str) {
        let mut m = self.inner.lock().expect("metrics lock");
        *m.decisions
            .entry((metric.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let m = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        out.push_str("# HELP tollgate_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE tollgate_http_requests_total counter\n");
        for (route, by_method) in &m.requests {
            for (method, by_status) in by_method {
                for (status, n) in by_status {
                    let route = escape(route);
                    let _ = writeln!(
                        out,
                        "tollgate_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP tollgate_meter_decisions_total Metering decisions by metric and outcome.\n",
        );
        out.push_str("# TYPE tollgate_meter_decisions_total counter\n");
        for ((metric, outcome), n) in &m.decisions {
            let metric = escape(metric);
            let _ = writeln!(
                out,
                "tollgate_meter_decisions_total{{metric=\"{metric}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP tollgate_http_errors_total Error answers by error code.\n");
        out.push_str("# TYPE tollgate_http_errors_total counter\n");
        for (code, n) in &m.error_codes {
            let code = escape(code);
            let _ = writeln!(out, "tollgate_http_errors_total{{code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP tollgate_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE tollgate_http_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let n = m.latency_buckets[i];
            let _ = writeln!(
                out,
                "tollgate_http_request_duration_seconds_bucket{{le=\"{b}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "tollgate_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            m.latency_count
        );
        let _ = writeln!(
            out,
            "tollgate_http_request_duration_seconds_sum {}",
            m.latency_sum
        );
        let _ = writeln!(
            out,
            "tollgate_http_request_duration_seconds_count {}",
            m.latency_count
        );
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Records every request under its matched route (unmatched paths count as one route, so
/// that scanners cannot grow the label set).
pub async fn track(State(state): State<super::AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    if let Some(r) = &route {
        tracing::Span::current().record("route", r.as_str());
    }
    let res = next.run(req).await;
    let route = route
        .as_ref()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics
        .record_request(method.as_str(), route, res.status().as_u16(), seconds);
    res
}

pub async fn serve(
    State(state): State<super::AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render() + &rate_limit_gauge(state.engine.rate_limit_backend()),
    )
}

/// 1 while Redis is configured but not answering (rate limits counted by this instance alone).
fn rate_limit_gauge(backend: RateLimitBackend) -> String {
    let degraded = u8::from(backend == RateLimitBackend::Degraded);
    format!(
        "# HELP tollgate_rate_limit_degraded 1 while Redis is configured but not answering and rate limits are counted by this instance alone.\n\
         # TYPE tollgate_rate_limit_degraded gauge\n\
         tollgate_rate_limit_degraded {degraded}\n"
    )
}
