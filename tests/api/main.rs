//! Integration tests: one binary, so that linking happens once.

mod helpers;

mod accounts;
mod admin;
mod api_keys;
mod cli;
mod health;
mod http_api;
mod metering;
mod revenue;
mod stripe;
