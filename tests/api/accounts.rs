use crate::helpers::{Backend, TestApp};
use crate::on_both;
use tollgate::domain::{RefreshToken, Role, UserStatus};
use tollgate::service::accounts::{Device, Registration};
use tollgate::Error;

fn reg<'a>(email: &'a str, password: &'a str) -> Registration<'a> {
    Registration {
        email,
        password,
        full_name: None,
    }
}

fn device(ua: &str) -> Device {
    Device {
        user_agent: Some(ua.into()),
        ip: Some("203.0.113.7".into()),
    }
}

on_both!(register_normalises_email_and_starts_as_active_user);
async fn register_normalises_email_and_starts_as_active_user(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = app
        .engine
        .register(Registration {
            email: "  Ada@Example.COM ",
            password: "correct horse",
            full_name: Some(" Ada Lovelace "),
        })
        .await
        .expect("registers");
    assert_eq!(user.email.as_str(), "ada@example.com");
    assert_eq!(user.full_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(user.role, Role::User);
    assert_eq!(user.status, UserStatus::Active);
    assert!(user.id.as_str().starts_with("usr_"));
    assert_eq!(app.engine.count_users().await.unwrap(), 1);
}

on_both!(register_rejects_bad_input_field_by_field);
async fn register_rejects_bad_input_field_by_field(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let err = app
        .engine
        .register(reg("not-an-email", "short"))
        .await
        .unwrap_err();
    let Error::Validation(fields) = err else {
        panic!("expected validation error, got {err:?}")
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["email", "password"]);
    let long = "x".repeat(257);
    assert!(matches!(
        app.engine.register(reg("a@b.co", &long)).await,
        Err(Error::Validation(_))
    ));
}

on_both!(duplicate_email_is_email_taken);
async fn duplicate_email_is_email_taken(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.engine
        .register(reg("dup@example.com", "password1"))
        .await
        .unwrap();
    let err = app
        .engine
        .register(reg("DUP@example.com", "password2"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "email_taken");
}

on_both!(concurrent_registrations_with_one_email_make_one_account);
async fn concurrent_registrations_with_one_email_make_one_account(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let engine = app.engine.clone();
            tokio::spawn(async move { engine.register(reg("race@example.com", "password1")).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), "email_taken", "{e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(app.engine.count_users().await.unwrap(), 1);
}

on_both!(login_succeeds_and_fails_the_same_way_for_unknown_and_wrong);
async fn login_succeeds_and_fails_the_same_way_for_unknown_and_wrong(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = app
        .engine
        .register(reg("login@example.com", "password1"))
        .await
        .unwrap();
    let (who, pair) = app
        .engine
        .login("LOGIN@example.com", "password1", device("curl/8"))
        .await
        .unwrap();
    assert_eq!(who.id, user.id);
    let claims = app.engine.decode_access_token(&pair.access_token).unwrap();
    assert_eq!(claims.sub, user.id.to_string());
    assert_eq!(claims.sid, pair.session_id.to_string());
    assert_eq!(claims.role, Role::User);
    assert_eq!(claims.exp - claims.iat, 15 * 60);
    assert!(pair.refresh_token.expose().starts_with("rt_"));

    let wrong = app
        .engine
        .login("login@example.com", "password2", Device::default())
        .await
        .unwrap_err();
    let unknown = app
        .engine
        .login("nobody@example.com", "password1", Device::default())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), "invalid_credentials");
    assert_eq!(unknown.code(), "invalid_credentials");
    assert_eq!(wrong.to_string(), unknown.to_string());
}

on_both!(suspended_account_cannot_log_in_and_its_tokens_stop);
async fn suspended_account_cannot_log_in_and_its_tokens_stop(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = app
        .engine
        .register(reg("sus@example.com", "password1"))
        .await
        .unwrap();
    let (_, pair) = app
        .engine
        .login("sus@example.com", "password1", Device::default())
        .await
        .unwrap();
    app.engine
        .authenticate(&pair.access_token)
        .await
        .expect("token works before");

    app.engine
        .set_user_status(&user.id, UserStatus::Suspended)
        .await
        .unwrap();

    let err = app
        .engine
        .login("sus@example.com", "password1", Device::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "account_suspended");
    assert_eq!(
        app.engine
            .authenticate(&pair.access_token)
            .await
            .unwrap_err()
            .code(),
        "account_suspended"
    );
    assert_eq!(
        app.engine
            .refresh(&pair.refresh_token, Device::default())
            .await
            .unwrap_err()
            .code(),
        "account_suspended"
    );
}

on_both!(refresh_rotates_and_reuse_revokes_the_session);
async fn refresh_rotates_and_reuse_revokes_the_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.engine
        .register(reg("rot@example.com", "password1"))
        .await
        .unwrap();
    let (_, first) = app
        .engine
        .login("rot@example.com", "password1", device("phone"))
        .await
        .unwrap();

    let second = app
        .engine
        .refresh(&first.refresh_token, device("phone"))
        .await
        .expect("rotates");
    assert_ne!(second.refresh_token.expose(), first.refresh_token.expose());
    assert_eq!(second.session_id, first.session_id);
    app.engine
        .authenticate(&second.access_token)
        .await
        .expect("new access token works");

    // The old token again: somebody kept a copy. The whole session goes.
    let err = app
        .engine
        .refresh(&first.refresh_token, device("thief"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "refresh_token_reused");
    assert_eq!(
        app.engine
            .refresh(&second.refresh_token, device("phone"))
            .await
            .unwrap_err()
            .code(),
        "session_revoked"
    );
    assert_eq!(
        app.engine
            .authenticate(&second.access_token)
            .await
            .unwrap_err()
            .code(),
        "session_revoked"
    );

    let garbage = RefreshToken::from_client("rt_not-a-real-token");
    assert_eq!(
        app.engine
            .refresh(&garbage, Device::default())
            .await
            .unwrap_err()
            .code(),
        "invalid_refresh_token"
    );
}

on_both!(access_and_refresh_tokens_expire);
async fn access_and_refresh_tokens_expire(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.engine
        .register(reg("exp@example.com", "password1"))
        .await
        .unwrap();
    let (_, pair) = app
        .engine
        .login("exp@example.com", "password1", Device::default())
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(
        app.engine
            .authenticate(&pair.access_token)
            .await
            .unwrap_err()
            .code(),
        "token_expired"
    );
    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(
        app.engine
            .refresh(&pair.refresh_token, Device::default())
            .await
            .unwrap_err()
            .code(),
        "refresh_token_expired"
    );
    assert_eq!(
        app.engine
            .authenticate("eyJhbGciOiJIUzI1NiJ9.e30.bad")
            .await
            .unwrap_err()
            .code(),
        "invalid_token"
    );
}

on_both!(logout_revokes_only_that_session);
async fn logout_revokes_only_that_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = app
        .engine
        .register(reg("out@example.com", "password1"))
        .await
        .unwrap();
    let (_, a) = app
        .engine
        .login("out@example.com", "password1", device("laptop"))
        .await
        .unwrap();
    let (_, b) = app
        .engine
        .login("out@example.com", "password1", device("phone"))
        .await
        .unwrap();
    app.engine
        .revoke_session(&user.id, a.session_id.as_str(), "logout")
        .await
        .unwrap();
    assert_eq!(
        app.engine
            .authenticate(&a.access_token)
            .await
            .unwrap_err()
            .code(),
        "session_revoked"
    );
    app.engine
        .authenticate(&b.access_token)
        .await
        .expect("other device still signed in");
    let sessions = app
        .engine
        .list_sessions(&user.id, Some(&b.session_id))
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);
    assert_eq!(sessions[0].user_agent.as_deref(), Some("phone"));
    assert_eq!(
        app.engine
            .revoke_session(&user.id, a.session_id.as_str(), "logout")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

on_both!(change_password_needs_the_current_one_and_revokes_other_sessions);
async fn change_password_needs_the_current_one_and_revokes_other_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = app
        .engine
        .register(reg("pw@example.com", "password1"))
        .await
        .unwrap();
    let (_, here) = app
        .engine
        .login("pw@example.com", "password1", device("here"))
        .await
        .unwrap();
    let (_, there) = app
        .engine
        .login("pw@example.com", "password1", device("there"))
        .await
        .unwrap();

    let err = app
        .engine
        .change_password(&user.id, Some(&here.session_id), "wrong-one", "password2")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "wrong_password");

    let revoked = app
        .engine
        .change_password(&user.id, Some(&here.session_id), "password1", "password2")
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    app.engine
        .authenticate(&here.access_token)
        .await
        .expect("this session stays");
    assert_eq!(
        app.engine
            .authenticate(&there.access_token)
            .await
            .unwrap_err()
            .code(),
        "session_revoked"
    );
    assert!(app
        .engine
        .login("pw@example.com", "password1", Device::default())
        .await
        .is_err());
    app.engine
        .login("pw@example.com", "password2", Device::default())
        .await
        .expect("new password works");
}

on_both!(soft_delete_frees_the_email_and_keeps_the_row);
async fn soft_delete_frees_the_email_and_keeps_the_row(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let old = app
        .engine
        .register(reg("gone@example.com", "password1"))
        .await
        .unwrap();
    let (_, pair) = app
        .engine
        .login("gone@example.com", "password1", Device::default())
        .await
        .unwrap();
    let key = app
        .engine
        .create_api_key(
            &old.id,
            tollgate::service::api_keys::NewKey {
                name: "k",
                scopes: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();

    app.engine.delete_account(&old.id).await.unwrap();

    assert!(app.engine.authenticate(&pair.access_token).await.is_err());
    assert_eq!(
        app.engine
            .verify_api_key(key.plaintext.expose())
            .await
            .unwrap_err()
            .code(),
        "api_key_revoked"
    );
    assert_eq!(
        app.engine
            .login("gone@example.com", "password1", Device::default())
            .await
            .unwrap_err()
            .code(),
        "invalid_credentials"
    );
    let again = app
        .engine
        .register(reg("gone@example.com", "password9"))
        .await
        .expect("email is free again");
    assert_ne!(again.id, old.id);
    let kept = app.engine.user(&old.id).await.expect("history kept");
    assert_eq!(kept.status, UserStatus::Deleted);
}

on_both!(staff_create_makes_or_promotes);
async fn staff_create_makes_or_promotes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (admin, generated) = app
        .engine
        .create_staff("boss@example.com", Role::Admin, None)
        .await
        .unwrap();
    assert_eq!(admin.role, Role::Admin);
    let pw = generated.expect("a generated password is returned once");
    app.engine
        .login("boss@example.com", &pw, Device::default())
        .await
        .expect("generated password works");

    app.engine
        .register(reg("helper@example.com", "password1"))
        .await
        .unwrap();
    let (promoted, none) = app
        .engine
        .create_staff("helper@example.com", Role::Support, None)
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Support);
    assert!(none.is_none());
}
