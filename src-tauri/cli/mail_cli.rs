//! `tollgate mail`: the outbox, for local development without SMTP and for checking what was
//! sent.

use crate::service::Engine;
use crate::Settings;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum MailCommand {
    /// The newest mail of the outbox (pending, sent or failed).
    List {
        /// Only this user's mail (`usr_…`).
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One mail with its plain-text body (and HTML with --html).
    Show {
        id: String,
        #[arg(long)]
        html: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: Settings, cmd: MailCommand) -> anyhow::Result<()> {
    let engine = Engine::start(settings).await?;
    let result = run_with(&engine, cmd).await;
    engine.shutdown().await;
    result
}

async fn run_with(engine: &Engine, cmd: MailCommand) -> anyhow::Result<()> {
    match cmd {
        MailCommand::List { user, limit, json } => {
            let mail = engine.list_mail(user.as_deref(), limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&mail)?);
                return Ok(());
            }
            if mail.is_empty() {
                println!("the outbox is empty");
            }
            for m in &mail {
                println!(
                    "{}  {}  {:<7}  {:<15}  {}  {}",
                    m.id,
                    m.created_at.format("%Y-%m-%d %H:%M:%S"),
                    m.status,
                    m.template,
                    m.to,
                    m.subject
                );
            }
            if !engine.mail_is_sent() {
                eprintln!("TOLLGATE_SMTP_URL is not set: mail stays in the outbox");
            }
        }
        MailCommand::Show { id, html, json } => {
            let m = engine.show_mail(&id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&m)?);
                return Ok(());
            }
            let s = &m.summary;
            println!("id:       {}", s.id);
            println!("to:       {}", s.to);
            println!("subject:  {}", s.subject);
            println!("template: {}", s.template);
            println!(
                "status:   {} ({} attempt(s){})",
                s.status,
                s.attempts,
                s.last_error
                    .as_deref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            );
            println!();
            println!("{}", if html { &m.body_html } else { &m.body_text });
        }
    }
    Ok(())
}
