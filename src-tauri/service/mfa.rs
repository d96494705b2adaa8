//! TOTP two-factor authentication (RFC 6238): enrolment, confirmation with ten recovery codes,
//! the login challenge, and turning it off.
//!
//! Secrets are encrypted at rest with a key derived from the server secret; recovery codes are
//! stored as keyed hashes. Codes are checked against the engine's clock, one step (30 s)
//! either side, and a code's step is accepted once.

use super::accounts::{Device, TokenPair};
use super::Engine;
use crate::domain::{User, UserId, UserStatus};
use crate::error::{Error, Result};
use crate::plans::RateLimit;
use crate::store::{mfa, AnyConn};
use rand::Rng;
use serde::Serialize;
use totp_rs::{Builder, Totp};

/// How long a login challenge may be completed.
pub const CHALLENGE_TTL_SECS: i64 = 300;
pub const RECOVERY_CODES: usize = 10;
/// Second-factor attempts per account, so that six digits cannot be guessed.
const ATTEMPTS: RateLimit = RateLimit {
    requests: 10,
    window_secs: 300,
};

/// What an authenticator app needs: the secret, as text, as a URI and as a QR code.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// Base32, for typing into an app.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// The second factor a login or a change presents.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    Code(&'a str),
    RecoveryCode(&'a str),
}

fn recovery_code() -> String {
    // No 0/o, 1/l/i: codes are read off paper.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect()
    };
    format!("{}-{}", pick(5), pick(5))
}

impl Engine {
    fn totp(&self, secret: Vec<u8>, account: &str) -> Result<Totp> {
        Builder::new()
            .with_secret(secret)
            .with_issuer(Some(self.settings().product_name.replace(':', " ")))
            .with_account_name(account.replace(':', " "))
            .build()
            .map_err(|e| Error::Internal(anyhow::anyhow!("TOTP: {e:?}")))
    }

    fn stored_totp(&self, row: &mfa::TotpRow, account: &str) -> Result<Totp> {
        let secret = self.keys().decrypt_secret(&row.secret_enc).ok_or_else(|| {
            Error::Config("a two-factor secret does not open with this server secret".into())
        })?;
        self.totp(secret, account)
    }

    /// Whether the user has confirmed two-factor authentication.
    pub async fn mfa_enabled(&self, user: &UserId) -> Result<bool> {
        Ok(self.account_facts(user).await?.mfa_enabled)
    }

    /// Unused recovery codes of a user.
    pub async fn recovery_codes_left(&self, user: &UserId) -> Result<i64> {
        Ok(mfa::unused_recovery_codes(self.db().read(), user.as_str()).await?)
    }

    /// Starts enrolment: a fresh secret, unconfirmed until a code from it is confirmed.
    pub async fn start_totp(&self, user: &User) -> Result<TotpEnrolment> {
        if self.mfa_enabled(&user.id).await? {
            return Err(Error::MfaAlreadyEnabled);
        }
        let mut secret = vec![0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let totp = self.totp(secret.clone(), user.email.as_str())?;
        let uri = totp
            .to_url()
            .map_err(|e| Error::Internal(anyhow::anyhow!("TOTP URI: {e:?}")))?;
        let qr = qrcode::QrCode::new(uri.as_bytes())
            .map_err(|e| Error::Internal(anyhow::anyhow!("QR code: {e}")))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        let mut tx = self.db().begin().await?;
        mfa::upsert_unconfirmed(
            &mut tx,
            user.id.as_str(),
            &self.keys().encrypt_secret(&secret),
            self.now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(TotpEnrolment {
            secret: totp.secret().to_base32(),
            otpauth_uri: uri,
            qr_svg: qr,
        })
    }

    /// Checks a TOTP code in `tx` and spends its step; false when wrong or already used.
    async fn accept_totp(
        &self,
        tx: &mut AnyConn,
        user: &User,
        row: &mfa::TotpRow,
        code: &str,
    ) -> Result<bool> {
        let totp = self.stored_totp(row, user.email.as_str())?;
        let now = self.now().timestamp().max(0) as u64;
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let Some(step) = totp.check(&code, now) else {
            return Ok(false);
        };
        Ok(mfa::accept_step(tx, user.id.as_str(), step as i64, self.now_ms()).await?)
    }

    /// Confirms enrolment with a first code; answers the ten recovery codes, shown this once.
    pub async fn confirm_totp(&self, user: &User, code: &str) -> Result<Vec<String>> {
        self.count_mfa_attempt(&user.id).await?;
        let mut tx = self.db().begin().await?;
        let row = mfa::find_in(&mut tx, user.id.as_str())
            .await?
            .ok_or(Error::MfaNotEnabled)?;
        if row.confirmed_at.is_some() {
            return Err(Error::MfaAlreadyEnabled);
        }
        if !self.accept_totp(&mut tx, user, &row, code).await? {
            return Err(Error::InvalidMfaCode);
        }
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| self.keys().hash_recovery_code(user.id.as_str(), c))
            .collect();
        mfa::replace_recovery_codes(&mut tx, user.id.as_str(), &hashes, self.now_ms()).await?;
        tx.commit().await?;
        self.account_changed(user.id.as_str());
        Ok(codes)
    }

    /// Checks a second factor of a user with two-factor on, spending it, in `tx`.
    async fn check_second_factor(
        &self,
        tx: &mut AnyConn,
        user: &User,
        factor: SecondFactor<'_>,
    ) -> Result<()> {
        self.count_mfa_attempt(&user.id).await?;
        let row = mfa::find_in(tx, user.id.as_str())
            .await?
            .filter(|r| r.confirmed_at.is_some())
            .ok_or(Error::MfaNotEnabled)?;
        let ok = match factor {
            SecondFactor::Code(code) => self.accept_totp(tx, user, &row, code).await?,
            SecondFactor::RecoveryCode(code) => {
                let hash = self.keys().hash_recovery_code(user.id.as_str(), code);
                mfa::spend_recovery_code(tx, user.id.as_str(), &hash, self.now_ms()).await?
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidMfaCode)
        }
    }

    async fn count_mfa_attempt(&self, user: &UserId) -> Result<()> {
        self.inner
            .limiter
            .hit("mfa", user.as_str(), ATTEMPTS, self.now())
            .await
            .map(drop)
    }

    /// Turns two-factor off; needs a current code or a recovery code.
    pub async fn disable_totp(&self, user: &User, factor: SecondFactor<'_>) -> Result<()> {
        let mut tx = self.db().begin().await?;
        self.check_second_factor(&mut tx, user, factor).await?;
        mfa::delete(&mut tx, user.id.as_str()).await?;
        tx.commit().await?;
        self.account_changed(user.id.as_str());
        Ok(())
    }

    /// Staff turn two-factor off for a locked-out user (audited; the user is told by mail).
    pub(crate) async fn reset_mfa_audited(
        &self,
        user: &UserId,
        audit: &super::audit::Draft<'_>,
    ) -> Result<bool> {
        let account = self.user(user).await?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let was_on = mfa::find_in(&mut tx, user.as_str())
            .await?
            .is_some_and(|r| r.confirmed_at.is_some());
        let removed = mfa::delete(&mut tx, user.as_str()).await? > 0;
        if was_on {
            self.enqueue_mail(
                &mut tx,
                Some(user.as_str()),
                account.email.as_str(),
                super::mail::Template::MfaReset,
                &[],
            )
            .await?;
        }
        audit
            .write(
                &mut tx,
                serde_json::json!({ "mfa_enabled": was_on }),
                serde_json::json!({ "mfa_enabled": false, "secret_removed": removed }),
                now,
            )
            .await?;
        tx.commit().await?;
        self.account_changed(user.as_str());
        if was_on {
            self.mail_written();
        }
        Ok(was_on)
    }

    /// A signed challenge naming the user and its expiry, completed by
    /// [`Engine::login_mfa`].
    pub(crate) fn mfa_challenge(&self, user: &UserId) -> String {
        let exp = self.now().timestamp() + CHALLENGE_TTL_SECS;
        self.keys()
            .sign_challenge(&format!("mfa1|{}|{exp}", user.as_str()))
    }

    /// Completes a login that answered `mfa_required`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn login_mfa(
        &self,
        challenge: &str,
        factor: SecondFactor<'_>,
        device: Device,
    ) -> Result<(User, TokenPair)> {
        let payload = self
            .keys()
            .open_challenge(challenge)
            .ok_or(Error::InvalidMfaCode)?;
        let mut parts = payload.split('|');
        let (Some("mfa1"), Some(user), Some(exp)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::InvalidMfaCode);
        };
        let exp: i64 = exp.parse().map_err(|_| Error::InvalidMfaCode)?;
        if exp <= self.now().timestamp() {
            return Err(Error::InvalidMfaCode);
        }
        let user = UserId::parse(user).map_err(|_| Error::InvalidMfaCode)?;
        let user = self.user(&user).await?;
        match user.status {
            UserStatus::Active => {}
            UserStatus::Suspended => return Err(Error::AccountSuspended),
            UserStatus::Deleted => return Err(Error::InvalidCredentials),
        }
        let mut tx = self.db().begin().await?;
        self.check_second_factor(&mut tx, &user, factor).await?;
        tx.commit().await?;
        let pair = self.open_session(&user, &device).await?;
        Ok((user, pair))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recovery_codes_are_ten_characters_from_a_readable_alphabet() {
        let c = super::recovery_code();
        assert_eq!(c.len(), 11);
        assert_eq!(&c[5..6], "-");
        assert!(c
            .chars()
            .all(|ch| ch == '-' || (ch.is_ascii_alphanumeric() && !"01ilo".contains(ch))));
        assert_ne!(super::recovery_code(), c);
    }
}
