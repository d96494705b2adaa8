//! Prometheus metrics through the `metrics` facade and `metrics-exporter-prometheus`.
//!
//! Each router owns its recorder (never the process-global one), so that several servers in
//! one process (the console's embedded API, the tests) count apart. Recording goes through
//! [`metrics::with_local_recorder`] for the length of one synchronous call.

use crate::service::rate_limits::RateLimitBackend;
use crate::service::traffic::{ErrorCount, Gauges, RequestCounts};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics::{Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
pub const METER_DECISIONS: &str = "tollgate_meter_decisions_total";
pub const ERROR_ANSWERS: &str = "tollgate_http_errors_total";
pub const POOL_CONNECTIONS: &str = "tollgate_db_pool_connections";
pub const POOL_IDLE: &str = "tollgate_db_pool_idle_connections";
pub const POOL_MAX: &str = "tollgate_db_pool_max_connections";
pub const METER_WRITE_QUEUE: &str = "tollgate_meter_write_queue_batches";
pub const METER_COUNTERS: &str = "tollgate_meter_counters_held";
pub const METER_BATCHES: &str = "tollgate_meter_batches_total";
pub const METER_BATCHED: &str = "tollgate_meter_batched_requests_total";
pub const BUILD_INFO: &str = "tollgate_build_info";
pub const START_TIME: &str = "tollgate_start_time_seconds";
pub const RATE_LIMIT_DEGRADED: &str = "tollgate_rate_limit_degraded";

/// The route label of requests no route matched (one value, so scanners cannot grow the set).
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Seconds of request counts kept for the console's requests-per-second.
const RATE_WINDOW_SECS: u64 = 10;

/// Latency samples wait in the recorder until a scrape or an upkeep folds them into buckets;
/// a server nobody scrapes folds them at least this often.
const UPKEEP_EVERY_SECS: u64 = 5;

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    recent: RecentRequests,
    last_upkeep: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let metrics = Metrics {
            handle: recorder.handle(),
            recorder,
            recent: RecentRequests::default(),
            last_upkeep: AtomicU64::new(unix_secs()),
        };
        metrics.with(|| {
            describe_histogram!(
                REQUEST_DURATION,
                Unit::Seconds,
                "Time to answer a request, by method, route template and status."
            );
            describe_counter!(
                METER_DECISIONS,
                "Metering decisions by metric and decision (allowed, or the refusal's code)."
            );
            describe_counter!(ERROR_ANSWERS, "Error answers by error code.");
            describe_gauge!(
                POOL_CONNECTIONS,
                "Database connections open (idle or in use), by pool."
            );
            describe_gauge!(POOL_IDLE, "Idle database connections, by pool.");
            describe_gauge!(POOL_MAX, "The most connections a pool opens.");
            describe_gauge!(
                RATE_LIMIT_DEGRADED,
                "1 while Redis is configured but not answering and rate limits are counted by this instance alone."
            );
            describe_gauge!(
                METER_WRITE_QUEUE,
                "Batches of usage waiting for the group commit (memory metering)."
            );
            describe_gauge!(
                METER_COUNTERS,
                "Quota counters held in memory (memory metering); those of ended windows are dropped."
            );
            describe_counter!(
                METER_BATCHES,
                "Transactions of the database strategy's group commit (PostgreSQL)."
            );
            describe_counter!(
                METER_BATCHED,
                "Consumptions decided in the group commit's transactions; divided by tollgate_meter_batches_total, the mean batch size."
            );
            describe_gauge!(BUILD_INFO, "Always 1; the version is a label.");
            describe_gauge!(
                START_TIME,
                Unit::Seconds,
                "Unix time at which this server started."
            );
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            gauge!(START_TIME).set(unix_secs_f64());
        });
        metrics
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder as &dyn Recorder, f)
    }

    pub fn record_request(&self, method: &Method, route: &str, status: u16, took: Duration) {
        self.with(|| {
            histogram!(
                REQUEST_DURATION,
                "method" => method_label(method),
                "route" => route.to_owned(),
                "status" => status.to_string()
            )
            .record(took.as_secs_f64());
        });
        let now = unix_secs();
        self.recent.record(now);
        self.upkeep_now_and_then(now);
    }

    /// An error answer's `error.code`.
    pub fn record_error(&self, code: &str) {
        self.with(|| counter!(ERROR_ANSWERS, "code" => code.to_owned()).increment(1));
    }

    /// A metering decision: `allowed`, or the refusal's code.
    pub fn record_decision(&self, metric: &str, decision: &str) {
        self.with(|| {
            counter!(METER_DECISIONS, "metric" => metric.to_owned(), "decision" => decision.to_owned())
                .increment(1)
        });
    }

    /// Sets the gauges from what the engine holds now (called on every scrape).
    pub fn set_gauges(&self, g: &Gauges) {
        self.with(|| {
            for p in &g.pools {
                gauge!(POOL_CONNECTIONS, "pool" => p.name).set(p.open);
                gauge!(POOL_IDLE, "pool" => p.name).set(p.idle);
                gauge!(POOL_MAX, "pool" => p.name).set(p.max);
            }
            if let Some(n) = g.meter_write_queue {
                gauge!(METER_WRITE_QUEUE).set(n as f64);
            }
            if let Some(n) = g.meter_counters {
                gauge!(METER_COUNTERS).set(n as f64);
            }
            if let Some(b) = g.meter_batches {
                counter!(METER_BATCHES).absolute(b.batches);
                counter!(METER_BATCHED).absolute(b.requests);
            }
            let degraded = g.rate_limits == RateLimitBackend::Degraded;
            gauge!(RATE_LIMIT_DEGRADED).set(f64::from(u8::from(degraded)));
        });
    }

    /// Everything recorded, in Prometheus' text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    fn upkeep_now_and_then(&self, now: u64) {
        let last = self.last_upkeep.load(Ordering::Relaxed);
        if now >= last + UPKEEP_EVERY_SECS
            && self
                .last_upkeep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.handle.run_upkeep();
        }
    }

    /// The counters the console's API screen shows, read from the same recorder that
    /// `/metrics` renders (only the rate is kept beside it: Prometheus leaves rates to the
    /// scraper).
    pub fn counts(&self) -> RequestCounts {
        let count_series = format!("{REQUEST_DURATION}_count");
        let mut by_status: BTreeMap<u16, u64> = BTreeMap::new();
        let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
        for sample in self.render().lines().filter_map(Sample::parse) {
            if sample.name == count_series {
                if let Some(status) = sample.label("status").and_then(|s| s.parse().ok()) {
                    *by_status.entry(status).or_default() += sample.value as u64;
                }
            } else if sample.name == ERROR_ANSWERS {
                if let Some(code) = sample.label("code") {
                    *by_code.entry(code.to_owned()).or_default() += sample.value as u64;
                }
            }
        }
        RequestCounts {
            requests: by_status.values().sum::<u64>() as i64,
            requests_per_second: self.recent.per_second(unix_secs()),
            errors_by_status: by_status
                .into_iter()
                .filter(|(s, _)| *s >= 400)
                .map(|(s, n)| ErrorCount {
                    key: s.to_string(),
                    count: n as i64,
                })
                .collect(),
            errors_by_code: by_code
                .into_iter()
                .map(|(key, n)| ErrorCount {
                    key,
                    count: n as i64,
                })
                .collect(),
        }
    }
}

/// The standard methods as themselves, anything else as one value (so that made-up methods
/// cannot grow the label set).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn unix_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Requests in each of the last [`RATE_WINDOW_SECS`] seconds: one atomic word per second
/// (the second in the high bits, its count in the low ones), no lock.
#[derive(Default)]
struct RecentRequests {
    slots: [AtomicU64; RATE_WINDOW_SECS as usize],
}

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

impl RecentRequests {
    fn record(&self, now: u64) {
        let slot = &self.slots[(now % RATE_WINDOW_SECS) as usize];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let next = if current >> COUNT_BITS == now {
                (now << COUNT_BITS) | ((current & COUNT_MASK) + 1).min(COUNT_MASK)
            } else {
                (now << COUNT_BITS) | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    fn per_second(&self, now: u64) -> f64 {
        let total: u64 = self
            .slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|v| {
                let second = v >> COUNT_BITS;
                second <= now && second + RATE_WINDOW_SECS > now
            })
            .map(|v| v & COUNT_MASK)
            .sum();
        total as f64 / RATE_WINDOW_SECS as f64
    }
}

/// One line of the text format: `name{label="value",...} value`.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

impl<'a> Sample<'a> {
    fn parse(line: &'a str) -> Option<Sample<'a>> {
        if line.starts_with('#') || line.trim().is_empty() {
            return None;
        }
        let name_end = line.find(['{', ' '])?;
        let name = &line[..name_end];
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(inner) = rest.strip_prefix('{') {
            rest = inner;
            loop {
                rest = rest.trim_start_matches(',');
                if let Some(after) = rest.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let (key, after_key) = rest.split_once("=\"")?;
                let mut value = String::new();
                let mut chars = after_key.char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next()?.1 {
                            'n' => value.push('\n'),
                            c => value.push(c),
                        },
                        (_, c) => value.push(c),
                    }
                };
                labels.push((key, value));
                rest = &after_key[end + 1..];
            }
        }
        let value = rest.split_whitespace().next()?.parse().ok()?;
        Some(Sample {
            name,
            labels,
            value,
        })
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// On matched routes only (a route layer): names the span after the route template and hands
/// the template out with the response, for [`track`].
pub async fn note_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    if let Some(r) = &route {
        tracing::Span::current().record("route", r.as_str());
    }
    let mut res = next.run(req).await;
    if let Some(r) = route {
        res.extensions_mut().insert(r);
    }
    res
}

/// Times every request, matched or not, under its route template ([`UNMATCHED`] when no
/// route matched, so that ids in paths and scanners' paths never become label values).
pub async fn track(State(state): State<super::AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let res = next.run(req).await;
    let route = res
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str);
    state
        .metrics
        .record_request(&method, route, res.status().as_u16(), started.elapsed());
    res
}

pub async fn serve(
    State(state): State<super::AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    state.metrics.set_gauges(&state.engine.gauges());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_back_with_their_labels() {
        let s = Sample::parse(r#"tollgate_http_errors_total{code="a\"b",x="1"} 3"#).unwrap();
        assert_eq!(s.name, "tollgate_http_errors_total");
        assert_eq!(s.label("code"), Some("a\"b"));
        assert_eq!(s.label("x"), Some("1"));
        assert_eq!(s.value, 3.0);
        let bare = Sample::parse("tollgate_start_time_seconds 17.5").unwrap();
        assert_eq!(
            (bare.name, bare.value),
            ("tollgate_start_time_seconds", 17.5)
        );
        assert!(Sample::parse("# TYPE x counter").is_none());
        assert!(Sample::parse(r#"broken{code="never closed} 1"#).is_none());
    }

    #[test]
    fn two_recorders_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.record_request(&Method::GET, "/health", 200, Duration::from_millis(2));
        a.record_error("route_not_found");
        b.record_request(&Method::GET, "/health", 404, Duration::from_millis(2));
        assert_eq!(a.counts().requests, 1);
        assert_eq!(a.counts().errors_by_code[0].key, "route_not_found");
        assert!(a.counts().errors_by_status.is_empty());
        assert_eq!(b.counts().errors_by_status[0].key, "404");
        assert!(b.counts().errors_by_code.is_empty());
    }

    #[test]
    fn the_rate_forgets_seconds_older_than_its_window() {
        let r = RecentRequests::default();
        for _ in 0..20 {
            r.record(1_000);
        }
        r.record(1_005);
        assert_eq!(r.per_second(1_005), 2.1);
        // Second 1000 has left the window; its slot is reused by 1010.
        assert_eq!(r.per_second(1_010), 0.1);
        r.record(1_010);
        assert_eq!(r.per_second(1_010), 0.2);
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let m = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&m), "_OTHER");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
