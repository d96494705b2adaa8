//! What the benchmarks share: their set-up (`setup.rs`: runtime, `BENCH_*` knobs, engine,
//! served router, percentiles). Load from outside the server is `meter_http`'s, through wrk.

// Each benchmark compiles this module on its own and uses only part of it.
#![allow(dead_code, unused_imports)]

mod setup;

pub use setup::{
    backend, database_url, env_or, percentile, run, serve, sign_in, start_engine, SECRET,
};
