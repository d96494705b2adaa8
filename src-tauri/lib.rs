//! Tollgate: the monetization layer of an API business.
//!
//! `service` holds the behaviour; `store` the persistence (SQLite or PostgreSQL); `http`,
//! `cli` and `desktop` are transports over the service layer.

pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod plans;
pub mod service;
pub mod store;
pub mod stripe;

#[cfg(feature = "desktop")]
pub mod desktop;

pub use config::Settings;
pub use error::{Error, Result};
pub use service::Engine;
