//! Mail: templates (plain text and HTML, in `templates/mail/`), the outbox written in the
//! transaction of the action that causes a mail, and the sender that delivers it over SMTP.
//!
//! Without `TOLLGATE_SMTP_URL` nothing is sent: mail waits in the outbox, where
//! `tollgate mail list|show` and the back office show it (local development).

use super::Engine;
use crate::domain::{MailId, UserId};
use crate::error::{Error, Result};
use crate::store::{at, mail, AnyConn};
use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use std::time::Duration;

/// A mail's kind, with its subject and its two bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    VerifyEmail,
    PasswordReset,
    MfaReset,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Template::VerifyEmail => "verify_email",
            Template::PasswordReset => "password_reset",
            Template::MfaReset => "mfa_reset",
        }
    }

    fn subject(self, product: &str) -> String {
        match self {
            Template::VerifyEmail => format!("Confirm your email address for {product}"),
            Template::PasswordReset => format!("Reset your {product} password"),
            Template::MfaReset => format!("Two-factor authentication was turned off on {product}"),
        }
    }

    fn bodies(self) -> (&'static str, &'static str) {
        match self {
            Template::VerifyEmail => (
                include_str!("../../templates/mail/verify_email.txt"),
                include_str!("../../templates/mail/verify_email.html"),
            ),
            Template::PasswordReset => (
                include_str!("../../templates/mail/password_reset.txt"),
                include_str!("../../templates/mail/password_reset.html"),
            ),
            Template::MfaReset => (
                include_str!("../../templates/mail/mfa_reset.txt"),
                include_str!("../../templates/mail/mfa_reset.html"),
            ),
        }
    }
}

/// A rendered mail: subject, plain text and HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Fills `{{name}}` placeholders; values are escaped in the HTML body.
pub fn render(template: Template, product: &str, vars: &[(&str, &str)]) -> Rendered {
    let (text, html) = template.bodies();
    let fill = |body: &str, escape: bool| {
        let mut out = body.to_owned();
        for (k, v) in vars {
            let v = if escape {
                escape_html(v)
            } else {
                (*v).to_owned()
            };
            out = out.replace(&format!("{{{{{k}}}}}"), &v);
        }
        out
    };
    Rendered {
        subject: template.subject(product),
        text: fill(text, false),
        html: fill(html, true),
    }
}

/// One mail of the outbox, without its bodies (they may carry live links).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct MailSummary {
    pub id: MailId,
    pub user_id: Option<UserId>,
    pub to: String,
    pub template: String,
    pub subject: String,
    /// `pending` (waiting for SMTP or a retry), `sent` or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// One mail with its bodies, for `tollgate mail show`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MailDetail {
    #[serde(flatten)]
    pub summary: MailSummary,
    pub body_text: String,
    pub body_html: String,
}

impl From<&mail::MailRow> for MailSummary {
    fn from(r: &mail::MailRow) -> Self {
        MailSummary {
            id: r.id.clone(),
            user_id: r.user_id.clone(),
            to: r.to_email.clone(),
            template: r.template.clone(),
            subject: r.subject.clone(),
            status: r.status.clone(),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            created_at: at(r.created_at),
            sent_at: r.sent_at.map(at),
        }
    }
}

/// Attempts before a mail is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long one attempt holds a row before another sender may take it.
const LEASE_MS: i64 = 60_000;

/// The wait after the `attempts`-th failure: 30 s, doubling, at most an hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 8) - 1;
    (30_000i64 << exp).min(3_600_000)
}

/// The SMTP transport `TOLLGATE_SMTP_URL` names, if any.
pub(crate) fn transport(
    settings: &crate::config::Settings,
) -> anyhow::Result<Option<AsyncSmtpTransport<Tokio1Executor>>> {
    let Some(url) = &settings.smtp_url else {
        return Ok(None);
    };
    let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
        .map_err(|e| anyhow::anyhow!("TOLLGATE_SMTP_URL is not a usable SMTP URL: {e}"))?
        .timeout(Some(Duration::from_secs(15)))
        .build();
    Ok(Some(t))
}

impl Engine {
    /// Writes a mail into the outbox in `tx`, the transaction of the action causing it. The
    /// sender picks it up after the commit.
    pub(crate) async fn enqueue_mail(
        &self,
        tx: &mut AnyConn,
        user_id: Option<&str>,
        to: &str,
        template: Template,
        vars: &[(&str, &str)],
    ) -> Result<MailId> {
        let s = self.settings();
        let base = s.public_url.trim_end_matches('/');
        let mut all: Vec<(&str, &str)> = vec![
            ("product", s.product_name.as_str()),
            ("base_url", base),
            ("email", to),
        ];
        all.extend_from_slice(vars);
        let r = render(template, &s.product_name, &all);
        let id = MailId::new();
        mail::insert(
            tx,
            mail::NewMail {
                id: &id,
                user_id,
                to_email: to,
                template: template.name(),
                subject: &r.subject,
                body_text: &r.text,
                body_html: &r.html,
                now_ms: self.now_ms(),
            },
        )
        .await?;
        Ok(id)
    }

    /// Wakes the sender after a commit that wrote mail.
    pub(crate) fn mail_written(&self) {
        self.inner.mail_wake.notify_one();
    }

    /// A link into this server's public pages, e.g. `/verify-email?token=…`.
    pub(crate) fn public_link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?token={token}",
            self.settings().public_url.trim_end_matches('/')
        )
    }

    /// Whether mail leaves this server (an SMTP URL is configured).
    pub fn mail_is_sent(&self) -> bool {
        self.inner.mailer.is_some()
    }

    /// Delivers the mail that is due, one attempt each; returns how many were sent. Without an
    /// SMTP URL, nothing is due to leave and mail stays in the outbox.
    pub async fn deliver_due_mail(&self) -> Result<usize> {
        let Some(mailer) = &self.inner.mailer else {
            return Ok(0);
        };
        let now = self.now_ms();
        let rows = mail::due(self.db().read(), now, 50).await?;
        let mut sent = 0;
        for row in rows {
            if !mail::claim(
                self.db().write(),
                &row.id,
                row.next_attempt_at,
                now + LEASE_MS,
            )
            .await?
            {
                continue;
            }
            match self.send_one(mailer, &row).await {
                Ok(()) => {
                    mail::mark_sent(self.db().write(), &row.id, self.now_ms()).await?;
                    sent += 1;
                }
                Err(why) => {
                    let attempts = row.attempts + 1;
                    let give_up = attempts >= MAX_ATTEMPTS;
                    tracing::warn!(mail = %row.id, attempts, give_up, error = %why, "mail not delivered");
                    mail::mark_attempt_failed(
                        self.db().write(),
                        &row.id,
                        &why,
                        self.now_ms() + backoff_ms(attempts),
                        give_up,
                    )
                    .await?;
                }
            }
        }
        Ok(sent)
    }

    async fn send_one(
        &self,
        mailer: &AsyncSmtpTransport<Tokio1Executor>,
        row: &mail::MailRow,
    ) -> std::result::Result<(), String> {
        let from: Mailbox = self
            .settings()
            .mail_from
            .parse()
            .map_err(|e| format!("TOLLGATE_MAIL_FROM is not an address: {e}"))?;
        let to: Mailbox = row
            .to_email
            .parse()
            .map_err(|e| format!("not an address: {e}"))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(row.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                row.body_text.clone(),
                row.body_html.clone(),
            ))
            .map_err(|e| e.to_string())?;
        mailer
            .send(message)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Delivers mail until the task is aborted: when woken by new mail, and every few seconds
    /// for retries.
    pub(crate) async fn run_mail_sender(&self) {
        if self.inner.mailer.is_none() {
            tracing::info!("no TOLLGATE_SMTP_URL: mail stays in the outbox (`tollgate mail list`)");
            return;
        }
        loop {
            if let Err(e) = self.deliver_due_mail().await {
                tracing::warn!(error = %e, "could not deliver mail");
            }
            let _ =
                tokio::time::timeout(Duration::from_secs(5), self.inner.mail_wake.notified()).await;
        }
    }

    /// The newest mail, optionally of one user, for `tollgate mail list`.
    pub async fn list_mail(&self, user: Option<&str>, limit: i64) -> Result<Vec<MailSummary>> {
        let rows = mail::list(self.db().read(), user, limit.clamp(1, 500)).await?;
        Ok(rows.iter().map(MailSummary::from).collect())
    }

    /// One mail with its bodies, for `tollgate mail show`.
    pub async fn show_mail(&self, id: &str) -> Result<MailDetail> {
        let row = mail::find(self.db().read(), id)
            .await?
            .ok_or(Error::NotFound("mail"))?;
        Ok(MailDetail {
            summary: MailSummary::from(&row),
            body_text: row.body_text,
            body_html: row.body_html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_every_placeholder_and_escape_html() {
        for t in [
            Template::VerifyEmail,
            Template::PasswordReset,
            Template::MfaReset,
        ] {
            let r = render(
                t,
                "Acme <API>",
                &[
                    ("product", "Acme <API>"),
                    ("base_url", "https://acme.test"),
                    ("email", "a@acme.test"),
                    ("link", "https://acme.test/x?token=abc&y=1"),
                    ("hours", "24"),
                    ("minutes", "30"),
                ],
            );
            assert!(!r.text.contains("{{") && !r.html.contains("{{"), "{t:?}");
            assert!(r.subject.contains("Acme <API>"));
            assert!(r.text.contains("Acme <API>"));
            assert!(r.html.contains("Acme &lt;API&gt;") && !r.html.contains("<API>"));
        }
        let r = render(
            Template::VerifyEmail,
            "T",
            &[("link", "https://acme.test/verify-email?token=abc")],
        );
        assert!(r
            .text
            .contains("https://acme.test/verify-email?token=abc\n"));
    }

    #[test]
    fn retries_back_off_and_stop_growing() {
        assert_eq!(backoff_ms(1), 30_000);
        assert_eq!(backoff_ms(2), 60_000);
        assert_eq!(backoff_ms(3), 120_000);
        assert_eq!(backoff_ms(MAX_ATTEMPTS), 3_600_000);
    }
}
