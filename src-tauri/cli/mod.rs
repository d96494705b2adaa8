//! The `tollgate` command line.

use crate::config::Settings;
use crate::domain::Role;
use crate::service::Engine;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "tollgate",
    version,
    about = "Tollgate: accounts, API keys, plans, quotas, metering and billing for an API business",
    long_about = "Tollgate is the monetization layer of an API business.\n\n\
Start here:\n  tollgate serve            run the HTTP API (SQLite file tollgate.db by default)\n  \
tollgate staff create --email you@example.com --role admin\n\n\
Configuration comes from defaults, then tollgate.toml (or --config FILE), then TOLLGATE_* \
environment variables such as TOLLGATE_DATABASE_URL, TOLLGATE_SECRET and TOLLGATE_ADDR."
)]
pub struct Cli {
    /// Configuration file (default: ./tollgate.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API until Ctrl-C or SIGTERM.
    Serve {
        /// Listen address, overriding TOLLGATE_ADDR (default 127.0.0.1:8080).
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage staff accounts (support, finance, admin).
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Open the desktop console (the default when no command is given).
    #[cfg(feature = "desktop")]
    Desktop,
}

#[derive(Subcommand, Debug)]
pub enum StaffCommand {
    /// Create a staff account, or give an existing account a staff role. The password is read
    /// from standard input when it is piped, and otherwise generated and printed once.
    Create(StaffCreate),
}

#[derive(Args, Debug)]
pub struct StaffCreate {
    #[arg(long)]
    pub email: String,
    /// support, finance or admin.
    #[arg(long, value_parser = parse_staff_role)]
    pub role: Role,
}

fn parse_staff_role(s: &str) -> Result<Role, String> {
    match Role::parse(s) {
        Some(r) if r.is_staff() => Ok(r),
        _ => Err(format!(
            "`{s}` is not a staff role: use support, finance or admin"
        )),
    }
}

pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Some(Command::Serve { addr }) => serve(settings, addr).await,
        Some(Command::Migrate) => {
            let db = crate::store::Db::connect(&settings.database_url).await?;
            db.migrate().await?;
            println!("migrations applied to {}", db.display_url());
            Ok(())
        }
        Some(Command::Staff(StaffCommand::Create(args))) => staff_create(settings, args).await,
        #[cfg(feature = "desktop")]
        Some(Command::Desktop) | None => crate::desktop::run(settings),
        #[cfg(not(feature = "desktop"))]
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
    }
}

async fn serve(settings: Settings, addr: Option<SocketAddr>) -> anyhow::Result<()> {
    let addr = addr.unwrap_or(settings.addr);
    let engine = Engine::start(settings).await?;
    let upkeep = engine.spawn_upkeep();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, database = %engine.db().display_url(), "tollgate is serving");
    crate::http::serve(engine.clone(), listener, crate::http::shutdown_signal()).await?;
    upkeep.abort();
    engine.shutdown().await;
    Ok(())
}

async fn staff_create(settings: Settings, args: StaffCreate) -> anyhow::Result<()> {
    let engine = Engine::start(settings).await?;
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        None
    } else {
        let mut buf = String::new();
        stdin.lock().read_to_string(&mut buf)?;
        let line = buf.lines().next().unwrap_or("").to_owned();
        (!line.is_empty()).then_some(line)
    };
    let (user, generated) = engine
        .create_staff(&args.email, args.role, password.as_deref())
        .await?;
    match generated {
        Some(pw) => {
            println!(
                "created {} ({}) with role {}",
                user.email, user.id, user.role
            );
            println!("password (shown once): {pw}");
        }
        None if password.is_some() && user.created_at == user.updated_at => {
            println!(
                "created {} ({}) with role {}",
                user.email, user.id, user.role
            )
        }
        None => println!("{} ({}) now has role {}", user.email, user.id, user.role),
    }
    engine.shutdown().await;
    Ok(())
}
