//! The back office through HTTP: permissions per role, each action's effect and audit row,
//! impersonation, refusal explanations, search and stats.

use crate::helpers::{call, register, staff_token, Backend, TestApp};
use crate::on_both;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate::domain::Role;
use tollgate::service::permissions::{allows, Action};

async fn audit_rows(app: &TestApp, action: &str) -> Vec<Value> {
    let entries = app
        .engine
        .audit_log(&tollgate::service::audit::AuditFilter {
            action: Some(action.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

// Every role against every back-office route: allowed exactly when the permission table says.
on_both!(permission_matrix_holds_for_every_role_and_action);
async fn permission_matrix_holds_for_every_role_and_action(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.argon2.memory_kib = 256).await else {
        return;
    };
    // Room for the plain user's many calls under the plan's API rate limit.
    let src = std::fs::read_to_string(format!(
        "{}/examples/plans.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    app.engine
        .apply_catalog(&src.replace("requests = 10,", "requests = 1000,"), None)
        .await
        .unwrap();
    let mut tokens = vec![(Role::User, register(&app, "plain@example.com").await.access)];
    for (i, role) in [Role::Support, Role::Finance, Role::Admin]
        .into_iter()
        .enumerate()
    {
        tokens.push((
            role,
            staff_token(&app, &format!("staff{i}@example.com"), role).await,
        ));
    }
    for (role, token) in &tokens {
        // A fresh target per role, since some actions end it.
        let target = register(&app, &format!("target-{}@example.com", role.as_str()))
            .await
            .user_id;
        let u = format!("/v1/admin/users/{target}");
        let cases: Vec<(Method, String, Option<Value>, Action)> = vec![
            (
                Method::GET,
                "/v1/admin/users".into(),
                None,
                Action::ListUsers,
            ),
            (Method::GET, u.clone(), None, Action::ViewUser),
            (
                Method::GET,
                "/v1/admin/stats".into(),
                None,
                Action::ViewStats,
            ),
            (
                Method::GET,
                "/v1/admin/audit".into(),
                None,
                Action::ViewAudit,
            ),
            (
                Method::GET,
                "/v1/admin/staff".into(),
                None,
                Action::ManageStaff,
            ),
            (
                Method::GET,
                "/v1/admin/decisions/nope".into(),
                None,
                Action::ExplainDecision,
            ),
            (
                Method::POST,
                format!("{u}/plan"),
                Some(json!({"plan": "pro", "reason": "test"})),
                Action::ChangePlan,
            ),
            (
                Method::POST,
                format!("{u}/usage/reset"),
                Some(json!({"metric": "videos"})),
                Action::ResetUsage,
            ),
            (
                Method::POST,
                format!("{u}/limits/clear"),
                None,
                Action::ClearLimits,
            ),
            (
                Method::POST,
                format!("{u}/sessions/revoke"),
                None,
                Action::RevokeSessions,
            ),
            (
                Method::POST,
                format!("{u}/keys/revoke"),
                None,
                Action::RevokeKeys,
            ),
            (
                Method::POST,
                format!("{u}/impersonate"),
                Some(json!({"reason": "test"})),
                Action::Impersonate,
            ),
            (
                Method::POST,
                format!("{u}/suspend"),
                Some(json!({"reason": "test"})),
                Action::SuspendUser,
            ),
            (
                Method::POST,
                format!("{u}/reactivate"),
                None,
                Action::ReactivateUser,
            ),
            (
                Method::POST,
                "/v1/admin/staff".into(),
                Some(json!({"email": "plain@example.com", "role": "user"})),
                Action::ManageStaff,
            ),
            (
                Method::DELETE,
                format!("{u}?reason=test"),
                None,
                Action::DeleteUser,
            ),
        ];
        for (method, path, body, action) in cases {
            let (status, v) = call(&app, method.clone(), &path, token, body).await;
            if allows(*role, action) {
                assert_ne!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role:?} may {action:?}: {method} {path} gave {v}"
                );
                assert!(
                    status.is_success() || status == StatusCode::NOT_FOUND,
                    "{role:?} {method} {path}: {status} {v}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role:?} may not {action:?}: {method} {path}"
                );
                assert_eq!(v["error"]["code"], "forbidden");
            }
        }
    }
}

on_both!(suspend_takes_effect_on_the_next_request_and_is_audited);
async fn suspend_takes_effect_on_the_next_request_and_is_audited(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let support = staff_token(&app, "support@example.com", Role::Support).await;
    let user = register(&app, "victim@example.com").await;
    let (s, _) = call(&app, Method::GET, "/v1/me", &user.key, None).await;
    assert_eq!(s, StatusCode::OK);

    let path = format!("/v1/admin/users/{}/suspend", user.user_id);
    let (s, v) = call(&app, Method::POST, &path, &support, Some(json!({}))).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "a reason is required"
    );
    let (s, v) = call(
        &app,
        Method::POST,
        &path,
        &support,
        Some(json!({"reason": "chargeback fraud"})),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("suspended"))
    );

    for token in [&user.key, &user.access] {
        let (s, v) = call(&app, Method::GET, "/v1/me", token, None).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("account_suspended"))
        );
    }
    let rows = audit_rows(&app, "user.suspend").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["target"], user.user_id.as_str());
    assert_eq!(rows[0]["reason"], "chargeback fraud");
    assert_eq!(rows[0]["before"]["status"], "active");
    assert_eq!(rows[0]["after"]["status"], "suspended");
    assert_eq!(rows[0]["via"], "127.0.0.1");

    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/v1/admin/users/{}/reactivate", user.user_id),
        &support,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, Method::GET, "/v1/me", &user.key, None).await;
    assert_eq!(s, StatusCode::OK);
}

on_both!(each_action_changes_what_it_says_and_leaves_an_audit_row);
async fn each_action_changes_what_it_says_and_leaves_an_audit_row(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = staff_token(&app, "admin@example.com", Role::Admin).await;
    let user = register(&app, "acted@example.com").await;
    let u = format!("/v1/admin/users/{}", user.user_id);

    // Plan override now.
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("{u}/plan"),
        &admin,
        Some(json!({"plan": "business", "reason": "partner deal"})),
    )
    .await;
    assert_eq!(
        (s, v["plan"].as_str()),
        (StatusCode::OK, Some("business@1"))
    );
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("{u}/plan"),
        &admin,
        Some(json!({"plan": "gold", "reason": "x"})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_plan"))
    );

    // Usage reset.
    for _ in 0..5 {
        call(
            &app,
            Method::POST,
            "/v1/meter",
            &user.key,
            Some(json!({"metric": "videos"})),
        )
        .await;
    }
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("{u}/usage/reset"),
        &admin,
        Some(json!({"metric": "videos", "reason": "bug on our side"})),
    )
    .await;
    assert_eq!((s, v["affected"].as_i64()), (StatusCode::OK, Some(5)));
    let (_, usage) = call(&app, Method::GET, "/v1/me/usage", &user.key, None).await;
    assert_eq!(usage["metrics"]["videos"]["used"], 0);
    assert!(
        app.engine
            .verify_usage(false, "test")
            .await
            .unwrap()
            .is_empty(),
        "a reset keeps counters derivable from events"
    );

    // Sessions and keys.
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("{u}/sessions/revoke"),
        &admin,
        None,
    )
    .await;
    assert_eq!((s, v["affected"].as_i64()), (StatusCode::OK, Some(1)));
    let (s, _) = call(&app, Method::GET, "/v1/me", &user.access, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = call(
        &app,
        Method::POST,
        &format!("{u}/keys/revoke"),
        &admin,
        Some(json!({"reason": "leaked"})),
    )
    .await;
    assert_eq!((s, v["affected"].as_i64()), (StatusCode::OK, Some(1)));
    let (s, _) = call(&app, Method::GET, "/v1/me", &user.key, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Detail shows it all.
    let (s, d) = call(&app, Method::GET, &u, &admin, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["subscription"]["plan"], "business@1");
    assert!(d["keys"][0]["revoked_at"].is_string());
    assert!(d["recent_usage"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "reset"));
    let actions: Vec<&str> = d["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.plan",
        "user.usage_reset",
        "user.sessions_revoke",
        "user.keys_revoke",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }

    // Soft delete needs a reason; then the account is gone for the user.
    let (s, _) = call(&app, Method::DELETE, &u, &admin, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("{u}?reason=gdpr%20request"),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, d) = call(&app, Method::GET, &u, &admin, None).await;
    assert_eq!(d["user"]["status"], "deleted");
    let (s, v) = call(
        &app,
        Method::GET,
        "/v1/admin/users/usr_doesnotexist",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, v) = call(
        &app,
        Method::GET,
        "/v1/admin/audit?action=user.delete",
        &admin,
        None,
    )
    .await;
    assert_eq!((s, v.as_array().unwrap().len()), (StatusCode::OK, 1));
}

on_both!(credit_grants_are_audited_and_checked);
async fn credit_grants_are_audited_and_checked(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let src = std::fs::read_to_string(format!(
        "{}/examples/credits.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    app.engine.apply_catalog(&src, None).await.unwrap();
    let support = staff_token(&app, "s@example.com", Role::Support).await;
    let user = register(&app, "credits@example.com").await;
    let path = format!("/v1/admin/users/{}/credits", user.user_id);
    let (s, v) = call(
        &app,
        Method::POST,
        &path,
        &support,
        Some(json!({"metric": "generations", "amount": 10, "reason": "apology"})),
    )
    .await;
    assert_eq!(
        (s, v["balance"].as_i64()),
        (StatusCode::OK, Some(15)),
        "5 granted for the period, plus 10"
    );
    let (s, _) = call(
        &app,
        Method::POST,
        &path,
        &support,
        Some(json!({"metric": "generations", "amount": 10})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "reason required");
    let (s, _) = call(
        &app,
        Method::POST,
        &path,
        &support,
        Some(json!({"metric": "generations", "amount": -100, "reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "no negative balance");
    let rows = audit_rows(&app, "user.credits").await;
    assert_eq!(
        (rows.len(), rows[0]["after"]["balance"].as_i64()),
        (1, Some(15))
    );
}

on_both!(impersonation_tokens_read_but_do_not_write_and_are_audited);
async fn impersonation_tokens_read_but_do_not_write_and_are_audited(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let support = staff_token(&app, "sup@example.com", Role::Support).await;
    let admin = staff_token(&app, "adm@example.com", Role::Admin).await;
    let user = register(&app, "imp@example.com").await;
    let (s, imp) = call(
        &app,
        Method::POST,
        &format!("/v1/admin/users/{}/impersonate", user.user_id),
        &support,
        Some(json!({"reason": "ticket 123"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (imp["expires_in"].as_i64(), imp["can_write"].as_bool()),
        (Some(600), Some(false))
    );
    let token = imp["access_token"].as_str().unwrap();
    let claims = app.engine.decode_access_token(token).unwrap();
    assert_eq!(claims.sub, user.user_id);
    assert!(claims.impersonated_by.is_some());

    let (s, me) = call(&app, Method::GET, "/v1/me", token, None).await;
    assert_eq!(
        (s, me["email"].as_str()),
        (StatusCode::OK, Some("imp@example.com"))
    );
    let (s, v) = call(
        &app,
        Method::PATCH,
        "/v1/me",
        token,
        Some(json!({"full_name": "Hacked"})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, _) = call(
        &app,
        Method::POST,
        "/v1/keys",
        token,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Support cannot impersonate staff; nobody passes staff powers through an impersonation.
    let admin_id = app.engine.decode_access_token(&admin).unwrap().sub;
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/v1/admin/users/{admin_id}/impersonate"),
        &support,
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, imp_admin) = call(
        &app,
        Method::POST,
        &format!("/v1/admin/users/{admin_id}/impersonate"),
        &admin,
        Some(json!({"reason": "self test"})),
    )
    .await;
    assert_eq!(
        (s, imp_admin["can_write"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (s, _) = call(
        &app,
        Method::GET,
        "/v1/admin/users",
        imp_admin["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    app.clock.advance(chrono::Duration::minutes(11));
    let (s, v) = call(&app, Method::GET, "/v1/me", token, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_expired"))
    );
    let rows = audit_rows(&app, "user.impersonate").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["reason"], "ticket 123");
}

on_both!(a_quoted_request_id_explains_the_refusal_and_offers_fixes);
async fn a_quoted_request_id_explains_the_refusal_and_offers_fixes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let support = staff_token(&app, "helpdesk@example.com", Role::Support).await;
    let user = register(&app, "refused@example.com").await;
    for _ in 0..3 {
        call(
            &app,
            Method::POST,
            "/v1/meter",
            &user.key,
            Some(json!({"metric": "videos"})),
        )
        .await;
    }
    let res = app
        .http
        .post(app.url("/v1/meter"))
        .bearer_auth(&user.key)
        .json(&json!({"metric": "videos"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.unwrap();
    let rid = body["error"]["request_id"].as_str().unwrap().to_owned();
    assert!(!rid.is_empty());

    let mut explained = None;
    for _ in 0..50 {
        let (s, v) = call(
            &app,
            Method::GET,
            &format!("/v1/admin/decisions/{rid}"),
            &support,
            None,
        )
        .await;
        if s == StatusCode::OK {
            explained = Some(v);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let e = explained.expect("the refusal was recorded");
    let text = e["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("used 3 of 3 `videos`"), "{text}");
    assert!(text.contains("free@1"), "{text}");
    assert!(text.contains(&user.key[..12]), "{text}");
    assert_eq!(e["fixes"], json!(["quota_boost"]));

    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/v1/admin/decisions/{rid}/fix"),
        &support,
        Some(json!({"fix": "clear_limit"})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only offered fixes apply"
    );
    let (s, _) = call(
        &app,
        Method::POST,
        &format!("/v1/admin/decisions/{rid}/fix"),
        &support,
        Some(json!({"fix": "quota_boost", "reason": "goodwill"})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(
        &app,
        Method::POST,
        "/v1/meter",
        &user.key,
        Some(json!({"metric": "videos"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(audit_rows(&app, "user.usage_reset").await.len(), 1);
    let (s, v) = call(
        &app,
        Method::GET,
        "/v1/admin/decisions/req-unknown",
        &support,
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

on_both!(search_pages_and_stats);
async fn search_pages_and_stats(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.argon2.memory_kib = 256).await else {
        return;
    };
    let finance = staff_token(&app, "cfo@example.com", Role::Finance).await;
    app.engine.seed(120, 300, 7, &|_, _, _| {}).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/users?limit=25&cursor={c}"),
            None => "/v1/admin/users?limit=25".into(),
        };
        let (s, page) = call(&app, Method::GET, &path, &finance, None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        total.get_or_insert(page["total"].as_i64().unwrap());
        for u in page["users"].as_array().unwrap() {
            assert!(
                seen.insert(u["id"].as_str().unwrap().to_owned()),
                "a user appeared on two pages"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len() as i64, total.unwrap());
    assert_eq!(total, Some(121), "120 seeded plus the finance account");

    let (_, page) = call(
        &app,
        Method::GET,
        "/v1/admin/users?q=lovelace&sort=email_asc&limit=200",
        &finance,
        None,
    )
    .await;
    let emails: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(!emails.is_empty() && emails.iter().all(|e| e.contains("lovelace")));
    assert!(emails.windows(2).all(|w| w[0] <= w[1]), "sorted by email");
    assert_eq!(page["total"].as_i64().unwrap(), emails.len() as i64);
    let (_, page) = call(&app, Method::GET, "/v1/admin/users?q=cfo@", &finance, None).await;
    assert_eq!(page["users"][0]["email"], "cfo@example.com");
    let (_, page) = call(
        &app,
        Method::GET,
        "/v1/admin/users?plan=pro&status=active",
        &finance,
        None,
    )
    .await;
    assert!(page["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["plan"] == "pro@1" && u["status"] == "active"));
    let (s, v) = call(&app, Method::GET, "/v1/admin/users?limit=0", &finance, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    let (s, _) = call(
        &app,
        Method::GET,
        "/v1/admin/users?cursor=garbage",
        &finance,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s, stats) = call(
        &app,
        Method::GET,
        "/v1/admin/stats?days=400",
        &finance,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{stats}");
    let (s, stats) = call(
        &app,
        Method::GET,
        "/v1/admin/stats?days=366",
        &finance,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let parts = stats["users_active"].as_i64().unwrap()
        + stats["users_suspended"].as_i64().unwrap()
        + stats["users_deleted"].as_i64().unwrap();
    assert_eq!(stats["users_total"].as_i64().unwrap(), parts);
    assert_eq!(stats["users_total"], 121);
    let signups: i64 = stats["signups_per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["count"].as_i64().unwrap())
        .sum();
    assert_eq!(signups, 121);
    assert!(!stats["active_users_per_day"].as_array().unwrap().is_empty());
}

on_both!(search_by_user_id_and_stripe_customer);
async fn search_by_user_id_and_stripe_customer(backend: Backend) {
    // Arrange
    let Some(app) = TestApp::spawn_with(backend, |s| s.argon2.memory_kib = 256).await else {
        return;
    };
    let support = staff_token(&app, "help@example.com", Role::Support).await;
    app.engine.seed(50, 0, 7, &|_, _, _| {}).await.unwrap();
    let (_, page) = call(&app, Method::GET, "/v1/admin/users?limit=2", &support, None).await;
    let wanted = page["users"][1]["id"].as_str().unwrap().to_owned();
    sqlx::query(
        "INSERT INTO stripe_customers (customer_id, user_id, created_at) VALUES ($1, $2, 0)",
    )
    .bind("cus_Search123")
    .bind(&wanted)
    .execute(app.engine.db().write())
    .await
    .unwrap();

    // Act
    let (s, by_id) = call(
        &app,
        Method::GET,
        &format!("/v1/admin/users?q={wanted}"),
        &support,
        None,
    )
    .await;
    let (_, by_customer) = call(
        &app,
        Method::GET,
        "/v1/admin/users?q=cus_Search123",
        &support,
        None,
    )
    .await;
    let (_, unknown) = call(
        &app,
        Method::GET,
        "/v1/admin/users?q=usr_nobody",
        &support,
        None,
    )
    .await;

    // Assert
    assert_eq!(s, StatusCode::OK, "{by_id}");
    assert_eq!(by_id["total"], 1);
    assert_eq!(by_id["users"][0]["id"], wanted.as_str());
    assert_eq!(by_customer["total"], 1);
    assert_eq!(by_customer["users"][0]["id"], wanted.as_str());
    assert_eq!(unknown["total"], 0, "an unknown id matches nobody");
}

// A malformed user id in the path is refused by the extractor, in the error shape, before the
// handler runs: finance, whom the handler would refuse (403) for delete and suspend, gets it.
on_both!(a_malformed_user_id_in_the_path_is_a_422_before_the_handler);
async fn a_malformed_user_id_in_the_path_is_a_422_before_the_handler(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let finance = staff_token(&app, "finance@example.com", Role::Finance).await;
    for (method, path) in [
        (Method::GET, "/v1/admin/users/key_0Fz3kQ9dY2mXb8Lr4TqW1a"),
        (Method::DELETE, "/v1/admin/users/not-an-id?reason=x"),
        (Method::POST, "/v1/admin/users/usr_a-b/suspend"),
    ] {
        let (s, v) = call(&app, method, path, &finance, Some(json!({"reason": "x"}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
        assert_eq!(v["error"]["code"], "validation_failed", "{path}");
        assert_eq!(v["error"]["fields"][0]["code"], "invalid_id", "{path}");
        assert!(v["error"]["request_id"].is_string(), "{path}");
    }
}
