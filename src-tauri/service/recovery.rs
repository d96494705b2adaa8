//! Email verification and password reset: one-time tokens sent by mail.
//!
//! A token is random, stored as a keyed hash (so the database alone cannot forge or replay
//! one), expires, and is spent by its first use.

use super::{crypto, mail::Template, Engine};
use crate::domain::{Email, MailId, Password, User, UserId, UserStatus};
use crate::error::{Error, Result};
use crate::plans::RateLimit;
use crate::store::{account_tokens, sessions, users, AnyConn};
use chrono::{DateTime, Duration, Utc};

/// How long a verification link works.
pub const VERIFY_TTL_HOURS: i64 = 48;
/// How long a password-reset link works.
pub const RESET_TTL_MINUTES: i64 = 30;
/// Verification mails a user may ask for per hour.
const RESEND_LIMIT: RateLimit = RateLimit {
    requests: 3,
    window_secs: 3600,
};
/// Reset mails per address per hour, whether or not an account has the address.
const RESET_PER_EMAIL: RateLimit = RateLimit {
    requests: 3,
    window_secs: 3600,
};

/// The public pages that links in mail open.
pub const VERIFY_PAGE: &str = "/verify-email";
pub const RESET_PAGE: &str = "/reset-password";

/// What to tell a caller whose plan needs a verified email.
pub const VERIFY_HINT: &str = "open the link in the verification mail, or ask for a new one with POST /v1/auth/verify-email/resend";

impl Engine {
    /// Writes a fresh one-time token for `user` and returns its plaintext.
    async fn issue_link_token(
        &self,
        tx: &mut AnyConn,
        user: &str,
        purpose: &str,
        ttl: Duration,
    ) -> Result<String> {
        let token = crypto::random_token(32);
        let now = self.now_ms();
        account_tokens::insert(
            tx,
            &self.keys().hash_link_token(&token),
            user,
            purpose,
            now,
            now + ttl.num_milliseconds(),
        )
        .await?;
        Ok(token)
    }

    /// Writes a verification token and its mail in `tx` (registration, resend).
    pub(crate) async fn write_verification_mail(
        &self,
        tx: &mut AnyConn,
        user: &UserId,
        email: &Email,
    ) -> Result<MailId> {
        let token = self
            .issue_link_token(
                tx,
                user.as_str(),
                account_tokens::VERIFY_EMAIL,
                Duration::hours(VERIFY_TTL_HOURS),
            )
            .await?;
        let link = self.public_link(VERIFY_PAGE, &token);
        let hours = VERIFY_TTL_HOURS.to_string();
        self.enqueue_mail(
            tx,
            Some(user.as_str()),
            email.as_str(),
            Template::VerifyEmail,
            &[("link", &link), ("hours", &hours)],
        )
        .await
    }

    /// Spends a token of `purpose`: the account it belongs to, or `invalid_link_token` when it
    /// is unknown, of another purpose, expired or already used.
    async fn spend_link_token(
        &self,
        tx: &mut AnyConn,
        token: &str,
        purpose: &str,
    ) -> Result<UserId> {
        let hash = self.keys().hash_link_token(token.trim());
        let now = self.now_ms();
        let row = account_tokens::find(tx, &hash)
            .await?
            .filter(|r| r.purpose == purpose && r.used_at.is_none() && r.expires_at > now)
            .ok_or(Error::InvalidLinkToken)?;
        if !account_tokens::spend(tx, &hash, now).await? {
            return Err(Error::InvalidLinkToken);
        }
        match users::status_in(tx, &row.user_id).await?.as_deref() {
            Some("active") => Ok(row.user_id),
            Some("suspended") => Err(Error::AccountSuspended),
            _ => Err(Error::InvalidLinkToken),
        }
    }

    /// Confirms an email address with the token of a verification mail.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn verify_email(&self, token: &str) -> Result<User> {
        let mut tx = self.db().begin().await?;
        let user = self
            .spend_link_token(&mut tx, token, account_tokens::VERIFY_EMAIL)
            .await?;
        users::set_email_verified(&mut tx, user.as_str(), self.now_ms()).await?;
        tx.commit().await?;
        self.account_changed(user.as_str());
        self.user(&user).await
    }

    /// When the user's email was verified, if it was.
    pub async fn email_verified_at(&self, user: &UserId) -> Result<Option<DateTime<Utc>>> {
        Ok(self.account_facts(user).await?.email_verified_at)
    }

    /// Sends a new verification mail (rate limited per user); earlier links keep working
    /// until they expire.
    pub async fn resend_verification(&self, user: &UserId) -> Result<MailId> {
        let account = self.user(user).await?;
        if self.email_verified_at(user).await?.is_some() {
            return Err(Error::EmailAlreadyVerified);
        }
        self.inner
            .limiter
            .hit(
                "verify_email_resend",
                user.as_str(),
                RESEND_LIMIT,
                self.now(),
            )
            .await?;
        self.send_verification(&account, None).await
    }

    /// Writes a verification mail for `account`, with an audit event when staff asked.
    pub(crate) async fn send_verification(
        &self,
        account: &User,
        audit: Option<&super::audit::Draft<'_>>,
    ) -> Result<MailId> {
        if account.status == UserStatus::Deleted {
            return Err(Error::AccountNotActive("deleted".into()));
        }
        let mut tx = self.db().begin().await?;
        let id = self
            .write_verification_mail(&mut tx, &account.id, &account.email)
            .await?;
        if let Some(a) = audit {
            a.write(
                &mut tx,
                serde_json::json!({ "email_verified": false }),
                serde_json::json!({ "mail": id }),
                self.now_ms(),
            )
            .await?;
        }
        tx.commit().await?;
        self.mail_written();
        Ok(id)
    }

    /// Refuses metered use while the caller's plan asks for a verified email and theirs is not.
    pub async fn require_verified_email(&self, user: &UserId) -> Result<()> {
        let r = self.resolve_subscription(user).await?;
        if !r.effective.plan.require_verified_email {
            return Ok(());
        }
        match self.email_verified_at(user).await? {
            Some(_) => Ok(()),
            None => Err(Error::EmailUnverified(VERIFY_HINT.to_owned())),
        }
    }

    /// Sends a password-reset mail when a live account has this address. The caller answers
    /// the same whatever happens here, so that the answer tells nothing about the address; only
    /// rate limits (per client IP and per address) refuse.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn request_password_reset(&self, email: &str, ip: &str) -> Result<()> {
        let catalog = self.catalog().await?;
        if let Some(limit) = catalog.catalog.anonymous_limit("password_reset") {
            self.inner
                .limiter
                .hit("password_reset", &format!("ip:{ip}"), limit, self.now())
                .await?;
        }
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        self.inner
            .limiter
            .hit(
                "password_reset_email",
                email.as_str(),
                RESET_PER_EMAIL,
                self.now(),
            )
            .await?;
        let Some(row) = users::find_live_by_email(self.db().read(), &email).await? else {
            return Ok(());
        };
        let user = row.into_user();
        if user.status != UserStatus::Active {
            return Ok(());
        }
        let mut tx = self.db().begin().await?;
        let token = self
            .issue_link_token(
                &mut tx,
                user.id.as_str(),
                account_tokens::PASSWORD_RESET,
                Duration::minutes(RESET_TTL_MINUTES),
            )
            .await?;
        let link = self.public_link(RESET_PAGE, &token);
        let minutes = RESET_TTL_MINUTES.to_string();
        self.enqueue_mail(
            &mut tx,
            Some(user.id.as_str()),
            user.email.as_str(),
            Template::PasswordReset,
            &[("link", &link), ("minutes", &minutes)],
        )
        .await?;
        tx.commit().await?;
        self.mail_written();
        Ok(())
    }

    /// Sets a new password with the token of a reset mail. Every session of the account and
    /// every other reset token are revoked; the mailbox is proven, so the email is verified.
    /// Returns how many sessions were revoked.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn confirm_password_reset(&self, token: &str, password: &str) -> Result<u64> {
        let password = Password::parse(password, "password")?;
        let hash = self.passwords().hash(&password).await?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let user = self
            .spend_link_token(&mut tx, token, account_tokens::PASSWORD_RESET)
            .await?;
        users::set_password_hash(&mut tx, &user, &hash, now).await?;
        users::set_email_verified(&mut tx, user.as_str(), now).await?;
        let revoked = sessions::revoke_all(&mut tx, &user, None, "password_reset", now).await?;
        account_tokens::spend_all(&mut tx, user.as_str(), account_tokens::PASSWORD_RESET, now)
            .await?;
        tx.commit().await?;
        self.account_changed(user.as_str());
        Ok(revoked)
    }
}
