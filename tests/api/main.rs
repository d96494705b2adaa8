//! Integration tests: one binary, so that linking happens once.

mod helpers;

mod accounts;
mod admin;
mod api_keys;
mod cli;
#[cfg(feature = "desktop")]
mod console;
#[cfg(feature = "desktop")]
mod console_screens;
mod durability;
mod hardening;
mod health;
mod http_api;
mod metering;
mod metering_batch;
mod process;
mod revenue;
mod scale_out;
mod scale_redis;
mod security;
mod stats;
mod stripe;
mod stripe_events;
mod usage_series;
