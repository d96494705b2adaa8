//! Accounts: registration, login, token refresh, profile, deletion, staff.

use super::{crypto, Engine};
use crate::domain::{Email, Password, RefreshToken, Role, SessionId, User, UserId, UserStatus};
use crate::error::{Error, FieldError, Result};
use crate::store::{self, at, sessions, users};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Where a login comes from, recorded on its session.
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// A fresh access token and the refresh token that renews it.
#[derive(Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: i64,
    pub session_id: SessionId,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct SessionInfo {
    pub id: SessionId,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub current: bool,
}

pub struct Registration<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub full_name: Option<&'a str>,
}

const FULL_NAME_MAX: usize = 200;

fn parse_full_name(raw: Option<&str>) -> Result<Option<String>> {
    let Some(name) = raw.map(str::trim) else {
        return Ok(None);
    };
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > FULL_NAME_MAX || name.chars().any(char::is_control) {
        return Err(Error::validation(
            "full_name",
            "invalid",
            &format!("full name must be at most {FULL_NAME_MAX} printable characters"),
        ));
    }
    Ok(Some(name.to_owned()))
}

/// Collects every field's error instead of stopping at the first.
fn validate_registration(r: &Registration<'_>) -> Result<(Email, Password, Option<String>)> {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut take = |e: Error| {
        if let Error::Validation(list) = e {
            errors.extend(list)
        }
    };
    let email = Email::parse(r.email).map_err(&mut take).ok();
    let password = Password::parse(r.password, "password")
        .map_err(&mut take)
        .ok();
    let name = parse_full_name(r.full_name).map_err(&mut take).ok();
    match (email, password, name) {
        (Some(e), Some(p), Some(n)) if errors.is_empty() => Ok((e, p, n)),
        _ => Err(Error::Validation(errors)),
    }
}

impl Engine {
    /// Creates an account with role `user`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn register(&self, r: Registration<'_>) -> Result<User> {
        let (email, password, full_name) = validate_registration(&r)?;
        let (id, mut tx) = self
            .open_account(&email, full_name.as_deref(), &password, Role::User)
            .await?;
        self.write_verification_mail(&mut tx, &id, &email).await?;
        tx.commit().await?;
        self.mail_written();
        self.user(&id).await
    }

    /// Opens the transaction that creates an account: the user row and its default
    /// subscription are written, the caller adds what goes with them and commits. The password
    /// is hashed before the transaction opens, so the write connection is never held during
    /// argon2.
    async fn open_account(
        &self,
        email: &Email,
        full_name: Option<&str>,
        password: &Password,
        role: Role,
    ) -> Result<(UserId, store::Tx)> {
        let hash = self.passwords().hash(password).await?;
        let id = UserId::new();
        let mut tx = self.db().begin().await?;
        users::insert(
            &mut tx,
            users::NewUser {
                id: &id,
                email,
                full_name,
                password_hash: &hash,
                role,
                now_ms: self.now_ms(),
            },
        )
        .await?;
        self.insert_default_subscription(&mut tx, &id).await?;
        Ok((id, tx))
    }

    pub async fn user(&self, id: &UserId) -> Result<User> {
        users::find(self.db().read(), id)
            .await?
            .map(users::UserRow::into_user)
            .ok_or(Error::NotFound("user"))
    }

    /// Verifies email and password and opens a session. Unknown email and wrong password are
    /// the same error and cost the same argon2 work. With two-factor on, no session is opened:
    /// the answer is `mfa_required` with a challenge that [`Engine::login_mfa`] completes.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device: Device,
    ) -> Result<(User, TokenPair)> {
        let ip = device.ip.clone().unwrap_or_default();
        self.check_login_failures(email, &ip).await?;
        let user = match self.verify_login(email, password).await {
            Ok(user) => user,
            Err(e) => {
                if matches!(e, Error::InvalidCredentials) {
                    self.note_login_failure(email, &ip);
                }
                return Err(e);
            }
        };
        self.note_login_success(email, &ip);
        if self.mfa_enabled(&user.id).await? {
            return Err(Error::MfaRequired(self.mfa_challenge(&user.id)));
        }
        let pair = self.open_session(&user, &device).await?;
        Ok((user, pair))
    }

    /// The checks of [`Engine::login`] without opening a session: the live, active account
    /// whose password this is.
    pub async fn verify_login(&self, email: &str, password: &str) -> Result<User> {
        let row = match Email::parse(email) {
            Ok(email) => users::find_live_by_email(self.db().read(), &email).await?,
            Err(_) => None,
        };
        let ok = self
            .passwords()
            .verify(password, row.as_ref().map(|r| r.password_hash.as_str()))
            .await?;
        let user = match (ok, row) {
            (true, Some(row)) => row.into_user(),
            _ => return Err(Error::InvalidCredentials),
        };
        match user.status {
            UserStatus::Active => {}
            UserStatus::Suspended => return Err(Error::AccountSuspended),
            UserStatus::Deleted => return Err(Error::InvalidCredentials),
        }
        Ok(user)
    }

    /// The account behind a session its holder keeps without tokens (the desktop console),
    /// checked as a bearer token is: the session is live and the account active.
    pub async fn session_user(&self, user: &UserId, session: &SessionId) -> Result<User> {
        let row = sessions::find(self.db().read(), session)
            .await?
            .filter(|s| s.user_id == user.as_str())
            .ok_or(Error::SessionRevoked)?;
        if row.revoked_at.is_some() || row.expires_at <= self.now_ms() {
            return Err(Error::SessionRevoked);
        }
        let user = self.user(user).await?;
        match user.status {
            UserStatus::Active => Ok(user),
            UserStatus::Suspended => Err(Error::AccountSuspended),
            UserStatus::Deleted => Err(Error::SessionRevoked),
        }
    }

    /// Opens a new device session for a user who has just proven who they are.
    pub async fn open_session(&self, user: &User, device: &Device) -> Result<TokenPair> {
        let session = SessionId::new();
        let now = self.now_ms();
        let refresh_ttl =
            Duration::days(self.settings().tokens.refresh_ttl_days).num_milliseconds();
        let refresh = RefreshToken::new(format!(
            "{}{}",
            RefreshToken::PREFIX,
            crypto::random_token(32)
        ));
        let mut tx = self.db().begin().await?;
        sessions::insert(
            &mut tx,
            sessions::NewSession {
                id: &session,
                user_id: &user.id,
                user_agent: device.user_agent.as_deref().map(|s| truncate(s, 400)),
                ip: device.ip.as_deref(),
                now_ms: now,
                expires_ms: now + refresh_ttl,
            },
        )
        .await?;
        let hash = self.keys().hash_refresh_token(refresh.expose());
        sessions::insert_refresh(&mut tx, &hash, session.as_str(), now, now + refresh_ttl).await?;
        tx.commit().await?;
        let ttl = self.settings().tokens.access_ttl_secs;
        Ok(TokenPair {
            access_token: self.sign_access_token(&user.id, &session, user.role, ttl, None)?,
            refresh_token: refresh,
            expires_in: ttl,
            session_id: session,
        })
    }

    /// Exchanges a refresh token for a new pair. A token is good once: presenting a used one
    /// again revokes the whole session, since either the client or a thief holds a copy.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn refresh(&self, token: &RefreshToken, device: Device) -> Result<TokenPair> {
        let hash = self.keys().hash_refresh_token(token.expose());
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let Some(row) = sessions::find_refresh(&mut tx, &hash).await? else {
            return Err(Error::InvalidRefreshToken);
        };
        let session = sessions::find_in(&mut tx, &row.session_id)
            .await?
            .ok_or(Error::InvalidRefreshToken)?;
        let user_id = session.user_id.clone();
        if session.revoked_at.is_some() {
            return Err(Error::SessionRevoked);
        }
        if row.used_at.is_some() || !sessions::mark_refresh_used(&mut tx, &hash, now).await? {
            sessions::revoke(&mut tx, &user_id, &session.id, "refresh_token_reused", now).await?;
            tx.commit().await?;
            tracing::warn!(session = %session.id, "refresh token reused; session revoked");
            return Err(Error::RefreshTokenReused);
        }
        if row.expires_at <= now || session.expires_at <= now {
            return Err(Error::RefreshTokenExpired);
        }
        let user = users::find_for_update(&mut tx, &user_id)
            .await?
            .ok_or(Error::InvalidRefreshToken)?
            .into_user();
        match user.status {
            UserStatus::Active => {}
            UserStatus::Suspended => return Err(Error::AccountSuspended),
            UserStatus::Deleted => return Err(Error::SessionRevoked),
        }
        let fresh = RefreshToken::new(format!(
            "{}{}",
            RefreshToken::PREFIX,
            crypto::random_token(32)
        ));
        let fresh_hash = self.keys().hash_refresh_token(fresh.expose());
        sessions::insert_refresh(&mut tx, &fresh_hash, &session.id, now, session.expires_at)
            .await?;
        sessions::touch(&mut tx, &session.id, device.ip.as_deref(), now).await?;
        tx.commit().await?;
        let sid = session.id;
        let ttl = self.settings().tokens.access_ttl_secs;
        Ok(TokenPair {
            access_token: self.sign_access_token(&user.id, &sid, user.role, ttl, None)?,
            refresh_token: fresh,
            expires_in: ttl,
            session_id: sid,
        })
    }

    /// Ends one session (logout, or a user closing a device).
    pub async fn revoke_session(&self, user: &UserId, session: &str, reason: &str) -> Result<()> {
        let mut tx = self.db().begin().await?;
        let revoked = sessions::revoke(&mut tx, user, session, reason, self.now_ms()).await?;
        tx.commit().await?;
        if revoked {
            Ok(())
        } else {
            Err(Error::NotFound("session"))
        }
    }

    pub async fn list_sessions(
        &self,
        user: &UserId,
        current: Option<&SessionId>,
    ) -> Result<Vec<SessionInfo>> {
        let rows = sessions::list_live(self.db().read(), user, self.now_ms()).await?;
        Ok(rows
            .into_iter()
            .map(|r| SessionInfo {
                current: current.is_some_and(|c| *c == r.id),
                id: r.id,
                user_agent: r.user_agent,
                ip: r.ip,
                created_at: at(r.created_at),
                last_seen_at: at(r.last_seen_at),
                expires_at: at(r.expires_at),
            })
            .collect())
    }

    pub async fn update_full_name(&self, user: &UserId, full_name: Option<&str>) -> Result<User> {
        let name = parse_full_name(full_name)?;
        let mut tx = self.db().begin().await?;
        if users::set_full_name(&mut tx, user, name.as_deref(), self.now_ms()).await? == 0 {
            return Err(Error::NotFound("user"));
        }
        tx.commit().await?;
        self.forget_verified_keys();
        self.user(user).await
    }

    /// Changes the password after checking the current one, and signs out every other device.
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user))]
    pub async fn change_password(
        &self,
        user: &UserId,
        current_session: Option<&SessionId>,
        current: &str,
        new: &str,
    ) -> Result<u64> {
        let new = Password::parse(new, "new_password")?;
        let row = users::find(self.db().read(), user)
            .await?
            .ok_or(Error::NotFound("user"))?;
        if !self
            .passwords()
            .verify(current, Some(&row.password_hash))
            .await?
        {
            return Err(Error::WrongPassword);
        }
        let hash = self.passwords().hash(&new).await?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        users::set_password_hash(&mut tx, user, &hash, now).await?;
        let revoked =
            sessions::revoke_all(&mut tx, user, current_session, "password_changed", now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Soft delete: the account keeps its history, frees its email, and loses every session
    /// and key.
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user))]
    pub async fn delete_account(&self, user: &UserId) -> Result<()> {
        self.delete_account_audited(user, None).await
    }

    pub(crate) async fn delete_account_audited(
        &self,
        user: &UserId,
        audit: Option<&super::audit::Draft<'_>>,
    ) -> Result<()> {
        let now = self.now_ms();
        let before = self.user(user).await?;
        let mut tx = self.db().begin().await?;
        if users::set_status(&mut tx, user, UserStatus::Deleted, now).await? == 0 {
            return Err(Error::NotFound("user"));
        }
        let sessions = sessions::revoke_all(&mut tx, user, None, "account_deleted", now).await?;
        let keys = store::api_keys::revoke_all(&mut tx, user, now).await?;
        if let Some(a) = audit {
            let after = serde_json::json!({ "status": "deleted", "sessions_revoked": sessions, "keys_revoked": keys });
            a.write(
                &mut tx,
                serde_json::json!({ "status": before.status }),
                after,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        self.forget_verified_keys();
        self.subscription_changed(user.as_str());
        Ok(())
    }

    /// Creates a staff account, or gives an existing account a staff role. Returns the user
    /// and, when the account is new and no password was given, the generated password (to be
    /// shown once).
    pub async fn create_staff(
        &self,
        email: &str,
        role: Role,
        password: Option<&str>,
    ) -> Result<(User, Option<String>)> {
        let email = Email::parse(email)?;
        if let Some(row) = users::find_live_by_email(self.db().read(), &email).await? {
            let id = row.id;
            let mut tx = self.db().begin().await?;
            users::set_role(&mut tx, &id, role, self.now_ms()).await?;
            tx.commit().await?;
            self.forget_verified_keys();
            return Ok((self.user(&id).await?, None));
        }
        let (password, generated) = match password {
            Some(p) => (Password::parse(p, "password")?, None),
            None => {
                let p = crypto::random_base62(20);
                (Password::parse(&p, "password")?, Some(p))
            }
        };
        let (id, tx) = self.open_account(&email, None, &password, role).await?;
        tx.commit().await?;
        Ok((self.user(&id).await?, generated))
    }

    /// Whether any live account has a staff role (a new database has none).
    pub async fn has_staff(&self) -> Result<bool> {
        Ok(!store::admin::staff(self.db().read()).await?.is_empty())
    }

    /// Whether any live customer account exists (demo data is offered only when none does).
    pub async fn has_customers(&self) -> Result<bool> {
        Ok(users::any_customer(self.db().read()).await?)
    }

    /// Creates the first admin of a database that has no staff yet (first-run set-up). Refused
    /// once any staff account exists, and for an email already in use.
    pub async fn create_first_admin(&self, email: &str, password: &str) -> Result<User> {
        let (email, password, _) = validate_registration(&Registration {
            email,
            password,
            full_name: None,
        })?;
        if self.has_staff().await? {
            return Err(Error::StaffExists);
        }
        let (id, mut tx) = self
            .open_account(&email, None, &password, Role::Admin)
            .await?;
        let now = self.now_ms();
        let target = id.to_string();
        super::audit::Draft {
            actor: &target,
            action: "staff.first_admin",
            target: &target,
            reason: Some("first-run set-up"),
            via: Some("console"),
        }
        .write(
            &mut tx,
            serde_json::json!({}),
            serde_json::json!({ "role": Role::Admin }),
            now,
        )
        .await?;
        tx.commit().await?;
        self.user(&id).await
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(users::count_live(self.db().read()).await?)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Engine {
    /// Suspends or reactivates an account. A suspended account's tokens and keys stop working
    /// on their next request, since every request reads the account's status.
    pub async fn set_user_status(&self, user: &UserId, status: UserStatus) -> Result<User> {
        self.set_user_status_audited(user, status, None).await
    }

    pub(crate) async fn set_user_status_audited(
        &self,
        user: &UserId,
        status: UserStatus,
        audit: Option<&super::audit::Draft<'_>>,
    ) -> Result<User> {
        if status == UserStatus::Deleted {
            self.delete_account_audited(user, audit).await?;
            return self.user(user).await;
        }
        let before = self.user(user).await?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        if users::set_status(&mut tx, user, status, now).await? == 0 {
            return Err(Error::NotFound("user"));
        }
        if let Some(a) = audit {
            a.write(
                &mut tx,
                serde_json::json!({ "status": before.status }),
                serde_json::json!({ "status": status }),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        self.forget_verified_keys();
        self.user(user).await
    }
}
