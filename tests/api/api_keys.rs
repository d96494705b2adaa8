use crate::helpers::{new_user, Backend, TestApp};
use crate::on_both;
use tollgate::domain::{Scope, UserStatus};
use tollgate::service::api_keys::NewKey;

on_both!(key_is_shown_once_stored_hashed_and_verifies);
async fn key_is_shown_once_stored_hashed_and_verifies(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "keys@example.com").await;
    let created = app
        .engine
        .create_api_key(
            &u.id,
            NewKey {
                name: "backend",
                scopes: Some(&["meter".into()]),
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let plain = created.plaintext.expose().to_owned();
    assert!(
        plain.starts_with("sk_live_") && plain.len() >= 8 + 43,
        "{plain}"
    );
    assert_eq!(created.info.prefix, &plain[..12]);
    assert!(
        !format!("{:?}", created.plaintext).contains(&plain[12..]),
        "Debug must not show the key"
    );

    // The store holds neither the plaintext nor anything it could be rebuilt from.
    let stored: Vec<(String, String)> =
        sqlx::query_as::<_, (String, String)>("SELECT prefix, key_hash FROM api_keys")
            .fetch_all(app.engine.db().read())
            .await
            .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].1.contains(&plain[8..]));
    assert_eq!(stored[0].0, created.info.prefix);

    let v = app.engine.verify_api_key(&plain).await.unwrap();
    assert_eq!(v.user.id, u.id);
    assert_eq!(v.scopes, vec![Scope::Meter]);

    let listed = app.engine.list_api_keys(&u.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].last_used_at.is_none(),
        "use is recorded in batches, not per request"
    );
    app.engine.flush_key_uses().await.unwrap();
    let listed = app.engine.list_api_keys(&u.id).await.unwrap();
    assert!(listed[0].last_used_at.is_some());
}

on_both!(key_uses_are_flushed_in_batches_and_never_move_back);
async fn key_uses_are_flushed_in_batches_and_never_move_back(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "many-keys@example.com").await;
    // More keys than one flush transaction takes, so that the flush spans several.
    let mut plain = Vec::new();
    for i in 0..260 {
        let name = format!("key {i}");
        let k = app
            .engine
            .create_api_key(
                &u.id,
                NewKey {
                    name: &name,
                    scopes: None,
                    expires_at: None,
                },
            )
            .await
            .unwrap();
        plain.push((k.info.id.to_string(), k.plaintext.expose().to_owned()));
    }
    // One key was used later than this flush will say (another instance wrote it).
    let later = chrono::Utc::now().timestamp_millis() + 3_600_000;
    sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
        .bind(&plain[7].0)
        .bind(later)
        .execute(app.engine.db().write())
        .await
        .unwrap();
    for (_, key) in &plain {
        app.engine.verify_api_key(key).await.unwrap();
    }
    app.engine.flush_key_uses().await.unwrap();
    let listed = app.engine.list_api_keys(&u.id).await.unwrap();
    assert_eq!(listed.len(), 260);
    assert!(listed.iter().all(|k| k.last_used_at.is_some()));
    let kept = listed.iter().find(|k| k.id == plain[7].0).unwrap();
    assert_eq!(kept.last_used_at.map(|t| t.timestamp_millis()), Some(later));
}

on_both!(unknown_revoked_expired_and_suspended_keys_fail_each_their_own_way);
async fn unknown_revoked_expired_and_suspended_keys_fail_each_their_own_way(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "fail@example.com").await;
    let e = &app.engine;
    assert_eq!(
        e.verify_api_key("sk_live_nope").await.unwrap_err().code(),
        "invalid_api_key"
    );
    assert_eq!(
        e.verify_api_key(&format!("sk_live_{}", "a".repeat(43)))
            .await
            .unwrap_err()
            .code(),
        "invalid_api_key"
    );

    let revoked = e
        .create_api_key(
            &u.id,
            NewKey {
                name: "r",
                scopes: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    e.revoke_api_key(&u.id, &revoked.info.id).await.unwrap();
    assert_eq!(
        e.verify_api_key(revoked.plaintext.expose())
            .await
            .unwrap_err()
            .code(),
        "api_key_revoked"
    );
    assert_eq!(
        e.revoke_api_key(&u.id, &revoked.info.id)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );

    let soon = app.clock.as_ref();
    let expiring = e
        .create_api_key(
            &u.id,
            NewKey {
                name: "x",
                scopes: None,
                expires_at: Some(
                    tollgate::service::clock::Clock::now(soon) + chrono::Duration::hours(1),
                ),
            },
        )
        .await
        .unwrap();
    e.verify_api_key(expiring.plaintext.expose())
        .await
        .expect("valid before expiry");
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        e.verify_api_key(expiring.plaintext.expose())
            .await
            .unwrap_err()
            .code(),
        "api_key_expired"
    );

    let live = e
        .create_api_key(
            &u.id,
            NewKey {
                name: "l",
                scopes: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    e.set_user_status(&u.id, UserStatus::Suspended)
        .await
        .unwrap();
    assert_eq!(
        e.verify_api_key(live.plaintext.expose())
            .await
            .unwrap_err()
            .code(),
        "account_suspended"
    );
}

on_both!(key_input_is_validated);
async fn key_input_is_validated(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = new_user(&app, "val@example.com").await;
    let e = &app.engine;
    let bad_scope = e
        .create_api_key(
            &u.id,
            NewKey {
                name: "k",
                scopes: Some(&["root".into()]),
                expires_at: None,
            },
        )
        .await;
    assert_eq!(bad_scope.unwrap_err().code(), "validation_failed");
    let empty_name = e
        .create_api_key(
            &u.id,
            NewKey {
                name: "  ",
                scopes: None,
                expires_at: None,
            },
        )
        .await;
    assert_eq!(empty_name.unwrap_err().code(), "validation_failed");
    let past = e
        .create_api_key(
            &u.id,
            NewKey {
                name: "k",
                scopes: None,
                expires_at: Some(chrono::Utc::now() - chrono::Duration::days(1)),
            },
        )
        .await;
    assert_eq!(past.unwrap_err().code(), "validation_failed");
}
