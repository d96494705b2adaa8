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
    /// Check, simulate, apply and migrate plan catalogs.
    #[command(subcommand)]
    Plans(PlansCommand),
    /// Inspect and repair usage counters.
    #[command(subcommand)]
    Usage(UsageCommand),
    /// Inspect, replay and reconcile Stripe events and billing state.
    #[command(subcommand)]
    Stripe(StripeCommand),
    /// Search, inspect and act on users (the back office for a terminal).
    #[command(subcommand)]
    Users(admin_cli::UsersCommand),
    /// Revenue for finance: MRR, movements, revenue by plan, churn (add --csv for CSV).
    #[command(subcommand)]
    Revenue(revenue_cli::RevenueCommand),
    /// The mail outbox: what was (or will be) sent.
    #[command(subcommand)]
    Mail(mail_cli::MailCommand),
    /// Tools for developing with Tollgate.
    #[command(subcommand)]
    Dev(admin_cli::DevCommand),
    /// Open the desktop console (the default when no command is given).
    #[cfg(feature = "desktop")]
    Desktop {
        /// Open this database at once instead of the connection screen (`sqlite://FILE`,
        /// created when missing, or `postgres://…`).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
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

#[derive(Subcommand, Debug)]
pub enum PlansCommand {
    /// Report every problem of a plan file with its line and column; exits 1 on any.
    Check { file: PathBuf },
    /// Store the file as a new catalog version (subscribers keep their plan versions).
    Apply { file: PathBuf },
    /// Show what applying the file would change, and how many subscribers each change touches.
    Diff { file: PathBuf },
    /// Move every subscriber of one plan version to another (audited).
    Migrate {
        /// e.g. pro@1
        #[arg(long)]
        from: String,
        /// e.g. pro@2
        #[arg(long)]
        to: String,
    },
    /// Replay usage attempts (JSON lines: user, plan, metric, amount, at) against a file's rules
    /// with a simulated clock.
    Simulate {
        file: PathBuf,
        #[arg(long, value_name = "FILE.jsonl")]
        events: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsageCommand {
    /// Rebuild every counter, credit balance, usage rollup and home figure from the usage
    /// events, users and refusals, and report drift.
    Verify {
        /// Write the rebuilt values (audited).
        #[arg(long)]
        repair: bool,
    },
}

pub use stripe_cli::StripeCommand;

/// `tollgate stripe …`.
mod admin_cli;
mod mail_cli;
mod revenue_cli;

mod stripe_cli {
    use crate::config::Settings;
    use crate::service::stripe_events::StripeEventRecord;
    use crate::service::Engine;
    use clap::Subcommand;
    use std::path::PathBuf;

    #[derive(Subcommand, Debug)]
    pub enum StripeCommand {
        /// Received Stripe events.
        #[command(subcommand)]
        Events(EventsCommand),
        /// Apply events from a JSON file or a folder of them (as Stripe sends them, or as
        /// `stripe events list --json` prints them), in `created` order; already applied
        /// events are skipped.
        Replay {
            path: PathBuf,
            /// Print the change each event would cause, and write nothing.
            #[arg(long)]
            dry_run: bool,
        },
        /// Compare subscriptions and recent invoices in Stripe's API with Tollgate's state and
        /// report every mismatch; exits 1 on any left unfixed.
        Reconcile {
            /// Resync each mismatch from Stripe (audited).
            #[arg(long)]
            apply: bool,
            /// How many days of invoices to compare.
            #[arg(long, default_value_t = 35)]
            days: i64,
        },
    }

    #[derive(Subcommand, Debug)]
    pub enum EventsCommand {
        /// Stored events, oldest first.
        List {
            /// e.g. invoice.paid
            #[arg(long = "type", value_name = "TYPE")]
            type_: Option<String>,
            /// pending, applied, failed or ignored
            #[arg(long, value_parser = ["pending", "applied", "failed", "ignored"])]
            status: Option<String>,
            #[arg(long, default_value_t = 1000)]
            limit: i64,
            /// One JSON record per line, payload included (input for `stripe replay`).
            #[arg(long)]
            json: bool,
        },
        /// One event: its record and its payload as received.
        Show { id: String },
    }

    fn record(e: &StripeEventRecord) -> serde_json::Value {
        serde_json::json!({
            "id": e.id,
            "type": e.type_,
            "created": e.created,
            "livemode": e.livemode,
            "status": e.status,
            "error": e.error,
            "customer_id": e.customer_id,
            "user_id": e.user_id,
            "received_at": e.received_at,
            "applied_at": e.applied_at,
            "attempts": e.attempts,
            "payload": e.payload,
        })
    }

    pub async fn run(settings: Settings, cmd: StripeCommand) -> anyhow::Result<()> {
        let engine = Engine::start(settings).await?;
        let result = match cmd {
            StripeCommand::Events(EventsCommand::List {
                type_,
                status,
                limit,
                json,
            }) => {
                let rows = engine
                    .stripe_events(type_.as_deref(), status.as_deref(), limit)
                    .await?;
                for e in &rows {
                    if json {
                        println!("{}", record(e));
                    } else {
                        println!(
                            "{:<30} {:<32} {} {:<8} {:<20} {}",
                            e.id,
                            e.type_,
                            e.created.format("%Y-%m-%d %H:%M:%S"),
                            e.status,
                            e.user_id
                                .as_deref()
                                .or(e.customer_id.as_deref())
                                .unwrap_or("-"),
                            e.error.as_deref().unwrap_or("")
                        );
                    }
                }
                if !json {
                    eprintln!("{} event(s)", rows.len());
                }
                Ok(())
            }
            StripeCommand::Events(EventsCommand::Show { id }) => {
                match engine.stripe_event(&id).await? {
                    Some(e) => {
                        println!("{}", serde_json::to_string_pretty(&record(&e))?);
                        Ok(())
                    }
                    None => Err(anyhow::anyhow!("no stored Stripe event {id}")),
                }
            }
            StripeCommand::Replay { path, dry_run } => {
                let (events, notes) = crate::stripe::replay::read_events(&path)?;
                for n in &notes {
                    eprintln!("skipped {n}");
                }
                let (_, summary) = engine
                    .replay_stripe_events(events, dry_run, |n, total, item| {
                        println!("[{n}/{total}] {} {} {}", item.id, item.type_, item.outcome);
                        if let Some(e) = &item.error {
                            println!("    error: {e}");
                        }
                        for c in &item.changes {
                            println!("    {c}");
                        }
                    })
                    .await?;
                println!(
                    "{}{} event(s): {} applied, {} ignored, {} pending, {} failed, {} already applied",
                    if dry_run { "dry run, nothing written: " } else { "" },
                    summary.total,
                    summary.applied,
                    summary.ignored,
                    summary.pending,
                    summary.failed,
                    summary.skipped
                );
                if summary.failed > 0 {
                    Err(anyhow::anyhow!("{} event(s) failed", summary.failed))
                } else {
                    Ok(())
                }
            }
            StripeCommand::Reconcile { apply, days } => {
                let report = engine.reconcile_stripe(apply, days, "cli").await?;
                for m in &report.mismatches {
                    println!(
                        "{} {}: {}",
                        if m.fixed { "fixed   " } else { "mismatch" },
                        m.target,
                        m.what
                    );
                }
                let open = report.mismatches.iter().filter(|m| !m.fixed).count();
                println!(
                    "checked {} subscription(s) and {} invoice(s): {} mismatch(es), {} fixed",
                    report.subscriptions_checked,
                    report.invoices_checked,
                    report.mismatches.len(),
                    report.mismatches.len() - open
                );
                if open > 0 {
                    Err(anyhow::anyhow!(
                        "{open} mismatch(es) left; run with --apply to resync from Stripe"
                    ))
                } else {
                    Ok(())
                }
            }
        };
        engine.shutdown().await;
        result
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `plans check` and `plans simulate` need no database.
fn plans_offline(cmd: &PlansCommand) -> Option<anyhow::Result<()>> {
    match cmd {
        PlansCommand::Check { file } => Some((|| {
            let src = read(file)?;
            let report = crate::plans::check(&src);
            if report.errors.is_empty() {
                let c = report.catalog.expect("a catalog without errors");
                let ids: Vec<&str> = c.plans.iter().map(|p| p.id.as_str()).collect();
                println!(
                    "{}: ok ({} plans: {}; metrics: {})",
                    file.display(),
                    ids.len(),
                    ids.join(", "),
                    c.metrics.join(", ")
                );
                return Ok(());
            }
            for p in &report.errors {
                eprintln!("{}:{}", file.display(), p);
            }
            anyhow::bail!("{} problem(s) in {}", report.errors.len(), file.display())
        })()),
        PlansCommand::Simulate { file, events, json } => Some((|| {
            let catalog = crate::plans::parse(&read(file)?).map_err(|problems| {
                let lines: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}:{p}", file.display()))
                    .collect();
                anyhow::anyhow!("the plan file has problems:\n{}", lines.join("\n"))
            })?;
            let attempts = crate::plans::simulate::read_attempts(&read(events)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", events.display()))?;
            let sim = crate::plans::simulate::simulate(&catalog, attempts);
            if *json {
                println!("{}", serde_json::to_string_pretty(&sim)?);
            } else {
                print!("{}", crate::plans::simulate::render_table(&sim));
            }
            Ok(())
        })()),
        _ => None,
    }
}

async fn plans(settings: Settings, cmd: PlansCommand) -> anyhow::Result<()> {
    if let Some(done) = plans_offline(&cmd) {
        return done;
    }
    let engine = Engine::start(settings).await?;
    let result = async {
        match cmd {
            PlansCommand::Apply { file } => {
                let o = engine
                    .apply_catalog(&read(&file)?, Some("cli"))
                    .await
                    .map_err(|e| describe(e, &file))?;
                if o.changed {
                    println!(
                        "applied {} as catalog version {}",
                        file.display(),
                        o.catalog_version
                    );
                    for v in o.new_plan_versions {
                        println!("  new plan version {v}");
                    }
                } else {
                    println!(
                        "{} equals catalog version {}: nothing to apply",
                        file.display(),
                        o.catalog_version
                    );
                }
            }
            PlansCommand::Diff { file } => {
                let changes = engine
                    .diff_catalog(&read(&file)?)
                    .await
                    .map_err(|e| describe(e, &file))?;
                if changes.is_empty() {
                    println!("no changes");
                }
                for c in changes {
                    println!(
                        "{:<12} {:<60} {} subscriber(s)",
                        c.plan, c.change, c.subscribers
                    );
                }
            }
            PlansCommand::Migrate { from, to } => {
                let n = engine.migrate_plan_version(&from, &to).await?;
                println!("moved {n} subscriber(s) from {from} to {to}");
            }
            PlansCommand::Check { .. } | PlansCommand::Simulate { .. } => {
                unreachable!("handled offline")
            }
        }
        anyhow::Ok(())
    }
    .await;
    engine.shutdown().await;
    result
}

fn describe(e: crate::Error, file: &std::path::Path) -> anyhow::Error {
    match e {
        crate::Error::InvalidCatalog(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("{}:{p}", file.display()))
                .collect();
            anyhow::anyhow!("the plan file has problems:\n{}", lines.join("\n"))
        }
        other => anyhow::anyhow!(other),
    }
}

async fn usage(settings: Settings, cmd: UsageCommand) -> anyhow::Result<()> {
    let engine = Engine::start(settings).await?;
    let UsageCommand::Verify { repair } = cmd;
    let drifts = engine.verify_usage(repair, "cli").await?;
    for d in &drifts {
        let period = d
            .period_start
            .map(|p| p.to_rfc3339())
            .unwrap_or_else(|| "credit balance".into());
        println!(
            "{} {} {}: stored {}, events say {}",
            d.user_id, d.metric, period, d.stored, d.expected
        );
    }
    // The home figures are derived state too: recounted (and rewritten) with the counters.
    let stat_drifts = engine.verify_stats(repair, "cli").await?;
    for d in &stat_drifts {
        let day = d.day.map(|d| d.to_string()).unwrap_or_default();
        println!(
            "{} {} {day}: stored {}, recount says {}",
            d.stat, d.key, d.stored, d.expected
        );
    }
    let rollup_drifts = engine.verify_usage_rollups(repair, "cli").await?;
    for d in &rollup_drifts {
        println!(
            "{} {} {} {} {}: stored {:?}, events say {:?}",
            d.table,
            d.owner,
            d.metric,
            d.bucket.to_rfc3339(),
            d.kind,
            d.stored,
            d.expected
        );
    }
    engine.shutdown().await;
    match (
        drifts.len() + stat_drifts.len() + rollup_drifts.len(),
        repair,
    ) {
        (0, _) => {
            println!("every counter matches its usage events");
            Ok(())
        }
        (n, true) => {
            println!("repaired {n} counter(s)");
            Ok(())
        }
        (n, false) => {
            anyhow::bail!("{n} counter(s) drifted from their events; run with --repair to fix them")
        }
    }
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
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Some(Command::Serve { addr }) => serve(settings, addr).await,
        Some(Command::Migrate) => {
            let database = Engine::migrate(&settings).await?;
            println!("migrations applied to {database}");
            Ok(())
        }
        Some(Command::Staff(StaffCommand::Create(args))) => staff_create(settings, args).await,
        Some(Command::Plans(cmd)) => plans(settings, cmd).await,
        Some(Command::Usage(cmd)) => usage(settings, cmd).await,
        Some(Command::Stripe(cmd)) => stripe_cli::run(settings, cmd).await,
        Some(Command::Users(cmd)) => admin_cli::users(settings, cmd).await,
        Some(Command::Revenue(cmd)) => revenue_cli::run(settings, cmd).await,
        Some(Command::Dev(cmd)) => admin_cli::dev(settings, cmd).await,
        Some(Command::Mail(cmd)) => mail_cli::run(settings, cmd).await,
        #[cfg(feature = "desktop")]
        Some(Command::Desktop { database_url }) => {
            let url = database_url.or_else(database_url_from_env);
            crate::desktop::run(settings, url)
        }
        #[cfg(feature = "desktop")]
        None => crate::desktop::run(settings, database_url_from_env()),
        #[cfg(not(feature = "desktop"))]
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
    }
}

/// `TOLLGATE_DATABASE_URL`, which makes the console open that database directly.
#[cfg(feature = "desktop")]
fn database_url_from_env() -> Option<String> {
    std::env::var("TOLLGATE_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

async fn serve(settings: Settings, addr: Option<SocketAddr>) -> anyhow::Result<()> {
    let addr = addr.unwrap_or(settings.addr);
    let engine = Engine::start(settings).await?;
    let upkeep = engine.spawn_upkeep();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, database = %engine.database_display(), "tollgate is serving");
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
