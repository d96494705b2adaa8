//! The metered call measured from outside, as customers see it: the release server in its own
//! process on a fresh database with 10,000 customers, each with an `sk_` key, driven over
//! loopback by `wrk` (32 connections, keys rotating across every customer). Prints, for a bare
//! route of the same server (`GET /health/live`), `GET /v1/me` and `POST /v1/meter`: requests
//! per second, p50, p99, errors, the ratio to the bare route, and the server's peak RSS. Then
//! checks that the counters add up to the allowed answers and that `tollgate usage verify` is
//! clean. With `BENCH_DATABASE_URL=postgres://…` it runs once more on a new database there,
//! with `BENCH_INSTANCES` servers (1 by default) sharing that database and the load.
//!
//! `cargo bench --no-default-features --bench meter_http` (needs `wrk`: `scripts/install-deps`)
//!
//! Knobs: `BENCH_SECONDS` (per route, default 10), `BENCH_ROUNDS` (the three routes measured
//! that many times in turn, medians printed; default 1), `BENCH_USERS` (10000),
//! `BENCH_CONNECTIONS` (32), `BENCH_THREADS` (wrk threads, 2), `BENCH_POPULATION` (other users
//! in the database besides the customers with keys, added by the seeder first: 1000000 for the
//! issue's RSS figure with a million users; default 0), `BENCH_PROFILE` (a directory: each
//! route of the first round is also recorded there with `perf record --call-graph dwarf` on
//! the servers, `<database>-<route>.perf.data`, from its second second to its last;
//! `scripts/flamegraph` draws them; perf's own CPU then counts in the wrk column).
//!
//! After the table it prints the CPU time each answer cost, by the server's threads (tokio's
//! workers, the usage writer, the checkpoints, the rest) and wrk's, from `/proc`. With the
//! cores saturated, the ratio of two routes' rates follows the ratio of their costs in all.

mod common;
#[allow(dead_code)] // the tests use more of it
#[path = "../tests/api/process.rs"]
mod process;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tollgate::service::accounts::Registration;
use tollgate::service::api_keys::NewKey;

/// One metric whose limits the run never reaches, and an API rate limit it never reaches.
const PLANS: &str = r#"
metrics = ["videos"]
[anonymous_rate_limits]
register = { requests = 100000000, window = "1h" }
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { videos = { limit = 1000000000, per = "day" } }
rate_limits = { api = { requests = 1000000000, window = "1h" } }
"#;

/// Reads the keys and rotates over them from a different place in each thread; prints one
/// machine-readable line at the end, with the number of 200 answers.
const WRK_SCRIPT: &str = r#"
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
local reqs = {}
local i = 0
function init(args)
  local method, path, body, keys = args[1], args[2], args[3], args[4]
  if body == "" then body = nil end
  local headers = {}
  if body then headers["Content-Type"] = "application/json" end
  for key in io.lines(keys) do
    headers["Authorization"] = "Bearer " .. key
    reqs[#reqs + 1] = wrk.format(method, path, headers, body)
  end
  i = (id * 7919) % #reqs
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  -- Every answer is a 200 or an error status (over 399), which wrk counts itself: counting
  -- the 200s in a Lua response() hook instead would cost wrk a Lua call and a table of
  -- headers per answer, on the cores the server needs.
  local allowed = summary.requests - e.status
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, allowed))
end
"#;

struct Run {
    name: &'static str,
    requests: u64,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    ok: u64,
    /// CPU time spent while the route was measured, by whom.
    cpu: Cpu,
}

/// CPU seconds (user and system) of the servers, split by thread, and of wrk.
#[derive(Clone, Copy, Default)]
struct Cpu {
    /// tokio's workers: HTTP, keys, decisions, answers.
    workers: f64,
    /// The usage writer's group commits.
    writer: f64,
    /// The log's checkpoints.
    checkpoint: f64,
    /// Every other thread (the pool's connections, upkeep), and threads that ended.
    other: f64,
    /// The load generator.
    wrk: f64,
}

impl Cpu {
    /// Now, for the servers `pids` and for the children this process has waited for (wrk).
    fn now(pids: &[u32]) -> Cpu {
        let mut c = Cpu {
            wrk: proc_times("/proc/self/stat", 15),
            ..Cpu::default()
        };
        for pid in pids {
            let total = proc_times(&format!("/proc/{pid}/stat"), 13);
            let mut named = 0.0;
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten();
            for task in tasks.flatten() {
                let stat = task.path().join("stat");
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                let t = proc_times(&stat.to_string_lossy(), 13);
                match comm.trim() {
                    "tokio-rt-worker" => c.workers += t,
                    n if n.starts_with("tollgate-usage") => c.writer += t,
                    n if n.starts_with("tollgate-checkp") => c.checkpoint += t,
                    _ => continue,
                }
                named += t;
            }
            c.other += (total - named).max(0.0);
        }
        c
    }

    /// What was spent since `before` (never below zero: the clock ticks are rounded).
    fn since(self, before: Cpu) -> Cpu {
        self.zip(before, |a, b| (a - b).max(0.0))
    }

    fn add(self, o: Cpu) -> Cpu {
        self.zip(o, |a, b| a + b)
    }

    /// `f` of each field of `self` and the same field of `o`.
    fn zip(self, o: Cpu, f: impl Fn(f64, f64) -> f64) -> Cpu {
        Cpu {
            workers: f(self.workers, o.workers),
            writer: f(self.writer, o.writer),
            checkpoint: f(self.checkpoint, o.checkpoint),
            other: f(self.other, o.other),
            wrk: f(self.wrk, o.wrk),
        }
    }

    fn server(&self) -> f64 {
        self.workers + self.writer + self.checkpoint + self.other
    }
}

/// Two consecutive clock-tick fields of a `stat` file, `first` and the next, added up, in
/// seconds: /proc counts them in USER_HZ, 100 a second on Linux. Fields count from 0 at the
/// pid (proc(5) counts from 1): a process's or thread's `utime stime` are 13 and 14, the
/// `cutime cstime` of the children it waited for 15 and 16.
fn proc_times(path: &str, first: usize) -> f64 {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // The command name is in parentheses and may hold spaces: count fields after it.
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i - 2)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(first) + tick(first + 1)) / 100.0
}

fn main() {
    let seconds: u64 = common::env_or("BENCH_SECONDS", 10);
    let users: usize = common::env_or("BENCH_USERS", 10_000);
    let population: u64 = common::env_or("BENCH_POPULATION", 0);
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let bench = |label, url: &str| {
        let started = Instant::now();
        common::run(populate(url, population));
        if population > 0 {
            println!(
                "{label}: {population} other users seeded in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        bench_database(label, url, dir.path(), users, seconds)
    };
    let mut failed = !bench("SQLite", &sqlite);
    if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
        let url = common::run(fresh_postgres_database(&url));
        failed |= !bench("PostgreSQL", &url);
    }
    if failed {
        std::process::exit(1);
    }
}

/// Seeds, serves and measures one database; false when a check failed.
fn bench_database(label: &str, url: &str, dir: &Path, users: usize, seconds: u64) -> bool {
    let started = Instant::now();
    let keys = common::run(seed(url, users));
    let keys_file = dir.join("keys.txt");
    std::fs::write(&keys_file, keys.join("\n") + "\n").expect("write keys");
    let script = dir.join("rotate.lua");
    std::fs::write(&script, WRK_SCRIPT).expect("write wrk script");
    println!(
        "{label}: {users} customers with keys seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // PostgreSQL can serve several instances at once: BENCH_INSTANCES of them share the load
    // (SQLite runs one).
    let instances: usize = if url.starts_with("postgres") {
        common::env_or("BENCH_INSTANCES", 1)
    } else {
        1
    };
    let mut servers: Vec<_> = (0..instances.max(1))
        .map(|_| process::start_server_with(url, &[("TOLLGATE_SECRET", common::SECRET)]))
        .collect();
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let profile = std::env::var_os("BENCH_PROFILE").map(std::path::PathBuf::from);
    let wrk = |name, method, path, body, secs| {
        run_wrk_on(&bases, name, &script, &keys_file, method, path, body, secs)
    };
    // The first round's routes, recorded when asked (the warm-up never is).
    let measure = |round: usize, file: &str, name, method, path, body| {
        let recording = match &profile {
            Some(dir) if round == 0 => {
                let name = format!("{}-{file}", label.to_lowercase());
                Some(Profiler::start(dir, &name, &pids, seconds))
            }
            _ => None,
        };
        let before = Cpu::now(&pids);
        let mut run = wrk(name, method, path, body, seconds);
        run.cpu = Cpu::now(&pids).since(before);
        if let Some(r) = recording {
            r.finish();
        }
        run
    };
    // Warm the caches of every customer once on every instance (wrk's rotation in a short
    // run reaches only part of them), then the connections, then measure.
    common::run(warm_every_key(&bases, &keys));
    wrk("warm-up", "GET", "/v1/me", "", 2);
    // Each round measures the three routes one after the other; with several rounds, drifts
    // of the machine during the run fall on every route alike, and the medians are printed.
    let rounds: usize = common::env_or("BENCH_ROUNDS", 1).max(1);
    let mut measured: Vec<[Run; 3]> = Vec::with_capacity(rounds);
    let mut rss_bare = 0.0;
    for round in 0..rounds {
        let bare = measure(
            round,
            "bare",
            "bare GET /health/live",
            "GET",
            "/health/live",
            "",
        );
        if round == 0 {
            rss_bare = pids.iter().map(|&p| peak_rss_mb(p)).fold(0.0, f64::max);
        }
        let me = measure(round, "me", "GET /v1/me (sk_ key)", "GET", "/v1/me", "");
        let meter = measure(
            round,
            "meter",
            "POST /v1/meter",
            "POST",
            "/v1/meter",
            r#"{"metric":"videos"}"#,
        );
        measured.push([bare, me, meter]);
    }
    let rss = pids.iter().map(|&p| peak_rss_mb(p)).fold(0.0, f64::max);
    // Let the requests wrk left in flight finish before reading the servers' counts.
    std::thread::sleep(Duration::from_millis(500));
    let decided = bases
        .iter()
        .map(|b| allowed_decisions(b))
        .sum::<Option<i64>>();
    for server in &mut servers {
        server.stop();
    }

    println!("\n{label}, {instances} instance(s), {users} customers, {seconds} s per route, {rounds} round(s), peak RSS {rss:.0} MB per instance (after the bare route: {rss_bare:.0} MB)");
    if rounds > 1 {
        for (i, runs) in measured.iter().enumerate() {
            println!("round {}", i + 1);
            print_table(runs.iter().map(|r| (r, r.per_sec / runs[0].per_sec)));
        }
        println!("median of {rounds} rounds (requests and errors: all rounds)");
    }
    let summary: Vec<(Run, f64)> = (0..3).map(|i| median_of(&measured, i)).collect();
    print_table(summary.iter().map(|(r, ratio)| (r, *ratio)));
    print_cpu(summary.iter().map(|(r, _)| r));

    // Every allowed answer is one unit on one customer's counter and one usage event.
    let meter = &summary[2].0;
    let (counted, events) = common::run(counter_sum(url));
    // Every round leaves up to one request per connection in flight (below).
    let in_flight: u64 = common::env_or::<u64>("BENCH_CONNECTIONS", 32) * rounds as u64;
    println!(
        "allowed answers: {} received by wrk, {} sent by the server (/metrics); counters sum to {counted}, {events} consume events",
        meter.ok,
        decided.map_or("?".into(), |d| d.to_string())
    );
    // wrk stops with up to one request in flight per connection: the server may have
    // consumed (and answered) those after wrk stopped reading.
    let mut ok =
        counted == events && counted >= meter.ok as i64 && counted <= (meter.ok + in_flight) as i64;
    // The server's own count of allowed decisions is taken when the handler answers; a
    // request wrk abandoned at the end may be consumed (the writer commits it) without its
    // handler running to the end, so the server may count up to one fewer per connection.
    if let Some(d) = decided {
        ok &= d <= counted && counted <= d + in_flight as i64;
    }
    let verify = process::tollgate_command(url)
        .env("TOLLGATE_SECRET", common::SECRET)
        .args(["usage", "verify"])
        .output()
        .expect("run tollgate usage verify");
    let verified = verify.status.success();
    println!(
        "counters match the allowed answers: {}; `tollgate usage verify`: {}",
        if ok { "yes" } else { "NO" },
        if verified { "clean" } else { "DRIFT" }
    );
    if !verified {
        println!("{}", String::from_utf8_lossy(&verify.stdout));
    }
    ok && verified
}

fn print_table<'a>(rows: impl Iterator<Item = (&'a Run, f64)>) {
    println!(
        "{:<24} {:>10} {:>10} {:>8} {:>8} {:>7} {:>6}",
        "route", "requests", "req/s", "p50 ms", "p99 ms", "errors", "ratio"
    );
    for (r, ratio) in rows {
        println!(
            "{:<24} {:>10} {:>10.0} {:>8.2} {:>8.2} {:>7} {:>6.2}",
            r.name, r.requests, r.per_sec, r.p50_ms, r.p99_ms, r.errors, ratio
        );
    }
}

/// CPU time per answer, by thread, over every round. With the cores saturated (wrk shares
/// them), the ratio of two routes' rates follows the ratio of what an answer costs in all,
/// server and wrk together.
fn print_cpu<'a>(runs: impl Iterator<Item = &'a Run>) {
    println!(
        "\nCPU per answer, µs       {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "server", "(workers", "writer", "checkpt", "other)", "wrk"
    );
    for r in runs {
        let us = |secs: f64| secs * 1e6 / r.requests.max(1) as f64;
        let c = &r.cpu;
        println!(
            "{:<24} {:>8.1} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            r.name,
            us(c.server()),
            us(c.workers),
            us(c.writer),
            us(c.checkpoint),
            us(c.other),
            us(c.wrk)
        );
    }
}

/// Route `i` over every round: the medians of its rate, latencies and ratio to the bare
/// route of the same round; its requests, errors and allowed answers added up.
fn median_of(rounds: &[[Run; 3]], i: usize) -> (Run, f64) {
    let median = |f: &dyn Fn(&[Run; 3]) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let run = Run {
        name: rounds[0][i].name,
        requests: rounds.iter().map(|r| r[i].requests).sum(),
        per_sec: median(&|r| r[i].per_sec),
        p50_ms: median(&|r| r[i].p50_ms),
        p99_ms: median(&|r| r[i].p99_ms),
        errors: rounds.iter().map(|r| r[i].errors).sum(),
        ok: rounds.iter().map(|r| r[i].ok).sum(),
        cpu: rounds.iter().fold(Cpu::default(), |c, r| c.add(r[i].cpu)),
    };
    (run, median(&|r| r[i].per_sec / r[0].per_sec))
}

/// A new, empty database on the PostgreSQL server of `url`.
async fn fresh_postgres_database(url: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to BENCH_DATABASE_URL");
    let name = format!("tollgate_bench_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await
        .expect("drop database");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut u = url::Url::parse(url).expect("BENCH_DATABASE_URL is a URL");
    u.set_path(&name);
    u.to_string()
}

/// Registers `users` customers through the engine and gives each a key; returns the keys.
/// Adds `n` users (with subscriptions, no keys, no usage) through the seeder.
async fn populate(url: &str, n: u64) {
    if n == 0 {
        return;
    }
    let engine = common::start_engine(url).await;
    engine.apply_catalog(PLANS, Some("bench")).await.unwrap();
    engine
        .seed(n, 0, 7, &|_, _, _| {})
        .await
        .expect("seed users");
    engine.shutdown().await;
}

async fn seed(url: &str, users: usize) -> Vec<String> {
    let engine = common::start_engine(url).await;
    engine.apply_catalog(PLANS, Some("bench")).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 8;
    for w in 0..workers {
        let engine = engine.clone();
        tasks.spawn(async move {
            let mut keys = Vec::new();
            for i in (w..users).step_by(workers) {
                let email = format!("customer{i}@bench.example");
                let user = engine
                    .register(Registration {
                        email: &email,
                        password: "password1",
                        full_name: None,
                    })
                    .await
                    .expect("register");
                let key = engine
                    .create_api_key(
                        &user.id,
                        NewKey {
                            name: "bench",
                            scopes: None,
                            expires_at: None,
                        },
                    )
                    .await
                    .expect("create a key");
                keys.push(key.plaintext.expose().to_owned());
            }
            keys
        });
    }
    let mut keys = Vec::with_capacity(users);
    while let Some(k) = tasks.join_next().await {
        keys.extend(k.expect("seeding task"));
    }
    engine.shutdown().await;
    keys
}

/// One wrk per instance at the same time, the connections shared among them; the answers are
/// added up, and the latencies are the slowest instance's.
#[allow(clippy::too_many_arguments)]
fn run_wrk_on(
    bases: &[String],
    name: &'static str,
    script: &Path,
    keys: &Path,
    method: &str,
    path: &str,
    body: &str,
    seconds: u64,
) -> Run {
    let connections: u32 = common::env_or("BENCH_CONNECTIONS", 32);
    let each = (connections / bases.len() as u32).max(threads_per_wrk());
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = bases
            .iter()
            .map(|base| {
                s.spawn(move || {
                    run_wrk(name, base, script, keys, method, path, body, seconds, each)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("wrk"))
            .collect()
    });
    Run {
        name,
        requests: runs.iter().map(|r| r.requests).sum(),
        per_sec: runs.iter().map(|r| r.per_sec).sum(),
        p50_ms: runs.iter().map(|r| r.p50_ms).fold(0.0, f64::max),
        p99_ms: runs.iter().map(|r| r.p99_ms).fold(0.0, f64::max),
        errors: runs.iter().map(|r| r.errors).sum(),
        ok: runs.iter().map(|r| r.ok).sum(),
        cpu: Cpu::default(),
    }
}

fn threads_per_wrk() -> u32 {
    common::env_or("BENCH_THREADS", 2)
}

#[allow(clippy::too_many_arguments)]
fn run_wrk(
    name: &'static str,
    base: &str,
    script: &Path,
    keys: &Path,
    method: &str,
    path: &str,
    body: &str,
    seconds: u64,
    connections: u32,
) -> Run {
    let threads = threads_per_wrk();
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(script)
        .arg(base)
        .arg("--")
        .args([method, path, body])
        .arg(keys)
        .output()
        .expect("run wrk (install it with scripts/install-deps)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no result:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let f: Vec<u64> = line.split(' ').map(|v| v.parse().unwrap_or(0)).collect();
    Run {
        name,
        requests: f[0],
        per_sec: f[0] as f64 / (f[1] as f64 / 1e6),
        p50_ms: f[2] as f64 / 1000.0,
        p99_ms: f[3] as f64 / 1000.0,
        errors: f[4],
        ok: f[5],
        cpu: Cpu::default(),
    }
}

/// `GET /v1/me` once with each key on each server, 32 at a time.
async fn warm_every_key(bases: &[String], keys: &[String]) {
    use futures_util::StreamExt;
    let http = reqwest::Client::new();
    let calls = bases.iter().flat_map(|b| keys.iter().map(move |k| (b, k)));
    futures_util::stream::iter(calls)
        .for_each_concurrent(32, |(base, key)| {
            let http = http.clone();
            async move {
                let res = http
                    .get(format!("{base}/v1/me"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .expect("warm-up request");
                assert!(res.status().is_success(), "warm-up: {}", res.status());
            }
        })
        .await;
}

/// The server's own count of allowed meter decisions, from `/metrics`.
fn allowed_decisions(base: &str) -> Option<i64> {
    let text = common::run(async {
        reqwest::get(format!("{base}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    })?;
    let sum = text
        .lines()
        .filter(|l| l.starts_with("tollgate_meter_decisions_total") && l.contains("\"allowed\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    Some(sum as i64)
}

/// (sum of every counter, number of consume events) read straight from the database.
async fn counter_sum(url: &str) -> (i64, i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url)
        .await
        .expect("open the database");
    let counted: Option<i64> =
        sqlx::query_scalar("SELECT CAST(SUM(used) AS BIGINT) FROM usage_counters")
            .fetch_one(&pool)
            .await
            .expect("sum counters");
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_events WHERE kind = 'consume'")
            .fetch_one(&pool)
            .await
            .expect("count events");
    pool.close().await;
    (counted.unwrap_or(0), events)
}

/// `perf record` of the servers during one route, on a thread of its own, with DWARF call
/// graphs (Rust code keeps no frame pointers): it starts a second into the route (connections
/// open, caches warm) and stops a second before its end.
struct Profiler(std::thread::JoinHandle<()>);

impl Profiler {
    fn start(dir: &Path, route: &str, pids: &[u32], seconds: u64) -> Profiler {
        std::fs::create_dir_all(dir).expect("create the BENCH_PROFILE directory");
        let out = dir.join(format!("{route}.perf.data"));
        let pids = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let record = seconds.saturating_sub(2).max(1);
        Profiler(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            let status = Command::new("perf")
                .args([
                    "record",
                    "-F",
                    "299",
                    "--call-graph",
                    "dwarf,16384",
                    "-p",
                    &pids,
                    "-o",
                ])
                .arg(&out)
                .args(["--", "sleep", &record.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => eprintln!("perf record for {} ended with {s}", out.display()),
                Err(e) => eprintln!("could not run perf (Debian: linux-perf): {e}"),
            }
        }))
    }

    fn finish(self) {
        self.0.join().expect("the perf thread");
    }
}

/// The server's peak resident set (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
