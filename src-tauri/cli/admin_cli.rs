//! `tollgate users …` and `tollgate dev seed`: the back office for a terminal user. Whoever
//! runs these has the database in hand, so they act as an operator with admin rights; their
//! changes are audited as `usr_cli`.

use crate::config::Settings;
use crate::domain::{Email, Role, User, UserId, UserStatus};
use crate::service::admin::{Actor, UserQuery, UserSort};
use crate::service::subscriptions::Effective;
use crate::service::Engine;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Search and list users.
    List {
        /// Email prefix (`ada@`) or any part of it (3 characters or more).
        #[arg(long)]
        q: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        /// active, suspended or deleted.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// The cursor printed after the previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one user (by id or email).
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Suspend a user: their tokens and keys stop working at once.
    Suspend {
        user: String,
        #[arg(long)]
        reason: String,
    },
    /// Reactivate a suspended user.
    Reactivate {
        user: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Move a user to a plan without Stripe.
    Plan {
        user: String,
        plan: String,
        /// Take effect at the end of the current period instead of now.
        #[arg(long)]
        at_period_end: bool,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DevCommand {
    /// Fill the database with realistic users, subscriptions and usage events.
    Seed {
        #[arg(long, default_value_t = 1000)]
        users: u64,
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Customers (among the users) given a Stripe billing history, for the revenue reports.
        #[arg(long, default_value_t = 0)]
        paying: u64,
        /// Months of billing history the paying customers get.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=120))]
        months: u32,
        /// Random seed, for repeatable data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub(crate) fn operator() -> Actor {
    let now = chrono::Utc::now();
    Actor {
        user: User {
            id: UserId::parse("usr_cli").expect("a valid id"),
            email: Email::parse("operator@tollgate.local").expect("a valid email"),
            full_name: Some("Terminal operator".into()),
            role: Role::Admin,
            status: UserStatus::Active,
            created_at: now,
            updated_at: now,
        },
        via: "cli".into(),
    }
}

async fn find(engine: &Engine, who: &str) -> anyhow::Result<UserId> {
    if who.starts_with(UserId::PREFIX) {
        return Ok(UserId::parse(who)?);
    }
    let page = engine
        .admin_list_users(
            &operator(),
            &UserQuery {
                q: Some(who.to_owned()),
                limit: Some(2),
                ..Default::default()
            },
        )
        .await?;
    let exact: Vec<_> = page
        .users
        .iter()
        .filter(|u| u.email.eq_ignore_ascii_case(who.trim()))
        .collect();
    match exact.as_slice() {
        [one] => Ok(UserId::parse(&one.id)?),
        [] => anyhow::bail!("no user with id or email `{who}`"),
        _ => anyhow::bail!("several users match `{who}`: use the id"),
    }
}

pub async fn users(settings: Settings, cmd: UsersCommand) -> anyhow::Result<()> {
    let engine = Engine::start(settings).await?;
    let result = run_users(&engine, cmd).await;
    engine.shutdown().await;
    result
}

async fn run_users(engine: &Engine, cmd: UsersCommand) -> anyhow::Result<()> {
    let op = operator();
    match cmd {
        UsersCommand::List {
            q,
            plan,
            status,
            limit,
            cursor,
            json,
        } => {
            let status = status
                .map(|s| {
                    UserStatus::parse(&s).ok_or_else(|| {
                        anyhow::anyhow!("status `{s}` must be active, suspended or deleted")
                    })
                })
                .transpose()?;
            let page = engine
                .admin_list_users(
                    &op,
                    &UserQuery {
                        q,
                        plan,
                        status,
                        limit: Some(limit),
                        cursor,
                        sort: Some(UserSort::CreatedDesc),
                        ..Default::default()
                    },
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
                return Ok(());
            }
            println!(
                "{:<32}  {:<40}  {:<12}  {:<10}  {:<8}  CREATED",
                "ID", "EMAIL", "PLAN", "STATUS", "ROLE"
            );
            for u in &page.users {
                println!(
                    "{:<32}  {:<40}  {:<12}  {:<10}  {:<8}  {}",
                    u.id,
                    u.email,
                    u.plan,
                    u.status,
                    u.role,
                    u.created_at.format("%Y-%m-%d")
                );
            }
            println!(
                "{}{} matching",
                page.total,
                if page.total_capped { "+" } else { "" }
            );
            if let Some(c) = page.next_cursor {
                println!("next page: --cursor {c}");
            }
        }
        UsersCommand::Show { user, json } => {
            let id = find(engine, &user).await?;
            let d = engine.admin_user_detail(&op, &id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
                return Ok(());
            }
            println!(
                "{} <{}> {}",
                d.user.id,
                d.user.email,
                d.user.full_name.as_deref().unwrap_or("")
            );
            println!(
                "role {}, status {}, since {}",
                d.user.role,
                d.user.status.as_str(),
                d.user.created_at.format("%Y-%m-%d")
            );
            println!(
                "plan {} ({}), {} until {}",
                d.subscription.plan,
                d.subscription.effective_plan,
                d.subscription.status.as_str(),
                d.subscription.current_period_end.format("%Y-%m-%d")
            );
            for (metric, u) in &d.usage.metrics {
                let limit = u
                    .limit
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "unlimited".into());
                println!(
                    "  {metric}: {} of {limit} per {}, resets {}",
                    u.used,
                    u.per,
                    u.resets_at.format("%Y-%m-%d %H:%M")
                );
            }
            println!(
                "{} live session(s), {} key(s)",
                d.sessions.len(),
                d.keys.iter().filter(|k| k.revoked_at.is_none()).count()
            );
        }
        UsersCommand::Suspend { user, reason } => {
            let id = find(engine, &user).await?;
            let u = engine.admin_suspend(&op, &id, Some(&reason)).await?;
            println!("{} is now {}", u.email, u.status.as_str());
        }
        UsersCommand::Reactivate { user, reason } => {
            let id = find(engine, &user).await?;
            let u = engine.admin_reactivate(&op, &id, reason.as_deref()).await?;
            println!("{} is now {}", u.email, u.status.as_str());
        }
        UsersCommand::Plan {
            user,
            plan,
            at_period_end,
            reason,
        } => {
            let id = find(engine, &user).await?;
            let when = if at_period_end {
                Effective::PeriodEnd
            } else {
                Effective::Now
            };
            let s = engine
                .admin_change_plan(&op, &id, &plan, when, Some(&reason))
                .await?;
            match s.scheduled_plan {
                Some(next) => println!(
                    "{} stays on {} until {}, then {next}",
                    id,
                    s.plan,
                    s.current_period_end.format("%Y-%m-%d")
                ),
                None => println!("{} is now on {}", id, s.plan),
            }
        }
    }
    Ok(())
}

pub async fn dev(settings: Settings, cmd: DevCommand) -> anyhow::Result<()> {
    let DevCommand::Seed {
        users,
        events,
        paying,
        months,
        seed,
    } = cmd;
    let engine = Engine::start(settings).await?;
    let bars = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>7} [{bar:40}] {pos}/{len} ({per_sec}, {eta})",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    let user_bar = bars.add(
        indicatif::ProgressBar::new(users)
            .with_style(style.clone())
            .with_prefix("users"),
    );
    let event_bar = bars.add(
        indicatif::ProgressBar::new(events)
            .with_style(style)
            .with_prefix("events"),
    );
    let started = std::time::Instant::now();
    let progress = |what: &str, done: u64, _total: u64| match what {
        "users" => user_bar.set_position(done),
        _ => event_bar.set_position(done),
    };
    let mut result = engine.seed(users, events, seed, &progress).await;
    user_bar.finish();
    event_bar.finish();
    let mut revenue = Default::default();
    if result.is_ok() && paying > 0 {
        let bar = indicatif::ProgressBar::new(paying).with_prefix("paying");
        let progress = |_: &str, done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done)
        };
        match engine.seed_revenue(paying, months, seed, &progress).await {
            Ok(r) => revenue = r,
            Err(e) => result = Err(e),
        }
        bar.finish();
    }
    engine.shutdown().await;
    result?;
    println!(
        "seeded {users} users and {events} usage events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if paying > 0 {
        let crate::service::seed::RevenueSeeded {
            customers,
            invoices,
            refunds,
        } = revenue;
        println!(
            "{customers} paying customers over {months} months: {invoices} paid invoices, {refunds} refunds"
        );
    }
    Ok(())
}
