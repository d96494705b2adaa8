//! The public HTTP API through the real router, as a customer's product uses it.

use crate::helpers::{call, error_code, register, send, staff_token, Backend, TestApp};
use crate::on_both;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both!(register_login_refresh_logout);
async fn register_login_refresh_logout(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let res = app
        .http
        .post(app.url("/v1/auth/register"))
        .json(&json!({ "email": "Ada@Example.com", "password": "password1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().contains_key("ratelimit-limit"));
    let b: Value = res.json().await.unwrap();
    assert_eq!(b["token_type"], "bearer");
    assert_eq!(b["expires_in"], 900);
    assert_eq!(b["user"]["email"], "ada@example.com");
    assert!(b["api_key"].as_str().unwrap().starts_with("sk_live_"));

    let (s, _, dup) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/register",
        None,
        Some(json!({"email": "ada@example.com", "password": "password1"})),
    )
    .await;
    assert_eq!((s, error_code(&dup)), (StatusCode::CONFLICT, "email_taken"));

    let (s, _, bad) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/register",
        None,
        Some(json!({"email": "nope", "password": "x"})),
    )
    .await;
    assert_eq!(
        (s, error_code(&bad)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);

    let (s, _, login) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/login",
        None,
        Some(json!({"email": "ada@example.com", "password": "password1"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, wrong) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/login",
        None,
        Some(json!({"email": "ada@example.com", "password": "password2"})),
    )
    .await;
    assert_eq!(
        (s, error_code(&wrong)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );

    let (s, _, pair) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": login["refresh_token"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, reused) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": login["refresh_token"]})),
    )
    .await;
    assert_eq!(
        (s, error_code(&reused)),
        (StatusCode::UNAUTHORIZED, "refresh_token_reused")
    );
    let (s, _, gone) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me",
        pair["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(
        (s, error_code(&gone)),
        (StatusCode::UNAUTHORIZED, "session_revoked")
    );

    let (s, _, _) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/logout",
        b["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, after) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me",
        b["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(
        (s, error_code(&after)),
        (StatusCode::UNAUTHORIZED, "session_revoked")
    );
}

on_both!(every_way_of_failing_authentication_has_its_code);
async fn every_way_of_failing_authentication_has_its_code(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let r = register(&app, "auth@example.com").await;
    let cases: Vec<(Option<String>, StatusCode, &str)> = vec![
        (None, StatusCode::UNAUTHORIZED, "missing_credentials"),
        (
            Some("not-a-jwt".into()),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            Some("sk_live_short".into()),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            Some(format!("sk_live_{}", "Z".repeat(43))),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
    ];
    for (token, status, code) in cases {
        let (s, h, v) = send(&app, reqwest::Method::GET, "/v1/me", token.as_deref(), None).await;
        assert_eq!((s, error_code(&v)), (status, code));
        assert!(h.contains_key("www-authenticate"));
    }
    app.clock.advance(chrono::Duration::minutes(16));
    let (s, _, v) = send(&app, reqwest::Method::GET, "/v1/me", Some(&r.access), None).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNAUTHORIZED, "token_expired")
    );
    let (s, _, _) = send(&app, reqwest::Method::GET, "/v1/me", Some(&r.key), None).await;
    assert_eq!(s, StatusCode::OK, "API keys do not expire unless asked to");

    // Suspension takes effect on the next request.
    let id = tollgate::domain::UserId::parse(&r.user_id).unwrap();
    app.engine
        .set_user_status(&id, tollgate::domain::UserStatus::Suspended)
        .await
        .unwrap();
    let (s, _, v) = send(&app, reqwest::Method::GET, "/v1/me", Some(&r.key), None).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::FORBIDDEN, "account_suspended")
    );
}

on_both!(profile_password_and_sessions);
async fn profile_password_and_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let r = register(&app, "me@example.com").await;
    let (s, _, me) = send(&app, reqwest::Method::GET, "/v1/me", Some(&r.access), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            me["email"].as_str(),
            me["plan"].as_str(),
            me["role"].as_str(),
            me["status"].as_str()
        ),
        (
            Some("me@example.com"),
            Some("free@1"),
            Some("user"),
            Some("active")
        )
    );
    let (s, _, me) = send(
        &app,
        reqwest::Method::PATCH,
        "/v1/me",
        Some(&r.access),
        Some(json!({"full_name": "Grace Hopper"})),
    )
    .await;
    assert_eq!(
        (s, me["full_name"].as_str()),
        (StatusCode::OK, Some("Grace Hopper"))
    );

    let (_, _, other) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/login",
        None,
        Some(json!({"email": "me@example.com", "password": "password1"})),
    )
    .await;
    let (s, _, sessions) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me/sessions",
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!((s, sessions.as_array().unwrap().len()), (StatusCode::OK, 2));
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/me/password",
        Some(&r.access),
        Some(json!({"current_password": "nope-nope", "new_password": "password2"})),
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "wrong_password")
    );
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/me/password",
        Some(&r.access),
        Some(json!({"current_password": "password1", "new_password": "password2"})),
    )
    .await;
    assert_eq!(
        (s, v["revoked_sessions"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (s, _, _) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me",
        other["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (_, _, third) = send(
        &app,
        reqwest::Method::POST,
        "/v1/auth/login",
        None,
        Some(json!({"email": "me@example.com", "password": "password2"})),
    )
    .await;
    let (_, _, sessions) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me/sessions",
        Some(&r.access),
        None,
    )
    .await;
    let other_id = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/me/sessions/{other_id}"),
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me",
        third["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, v) = send(
        &app,
        reqwest::Method::DELETE,
        "/v1/me/sessions/ses_nope",
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    // Not a session id at all: refused by the extractor, before the handler runs.
    let (s, _, v) = send(
        &app,
        reqwest::Method::DELETE,
        "/v1/me/sessions/key_0abc",
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "invalid_id");

    let (s, _, _) = send(
        &app,
        reqwest::Method::DELETE,
        "/v1/me",
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = send(&app, reqwest::Method::GET, "/v1/me", Some(&r.key), None).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a deleted account's keys are revoked"
    );
    register(&app, "me@example.com").await;
}

on_both!(keys_are_created_once_listed_by_prefix_scoped_and_revoked);
async fn keys_are_created_once_listed_by_prefix_scoped_and_revoked(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let r = register(&app, "keys@example.com").await;
    let (s, _, created) = send(
        &app,
        reqwest::Method::POST,
        "/v1/keys",
        Some(&r.access),
        Some(json!({"name": "backend", "scopes": ["meter"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let meter_key = created["api_key"].as_str().unwrap().to_owned();
    assert_eq!(created["key"]["prefix"].as_str().unwrap(), &meter_key[..12]);

    let (s, _, list) = send(
        &app,
        reqwest::Method::GET,
        "/v1/keys",
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&meter_key),
        "listing never shows a key"
    );

    // A meter-only key may meter but not read the account or make keys.
    let (s, _, _) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter",
        Some(&meter_key),
        Some(json!({"metric": "videos"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, v) = send(&app, reqwest::Method::GET, "/v1/me", Some(&meter_key), None).await;
    assert_eq!(
        (s, error_code(&v), v["error"]["scope"].as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope", Some("read"))
    );
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/keys",
        Some(&meter_key),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );

    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/keys",
        Some(&r.access),
        Some(json!({"name": "x", "scopes": ["root"]})),
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );

    let id = created["key"]["id"].as_str().unwrap();
    let (s, _, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/keys/{id}"),
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter",
        Some(&meter_key),
        Some(json!({"metric": "videos"})),
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNAUTHORIZED, "api_key_revoked")
    );
    let (s, _, v) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/keys/{id}"),
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!((s, error_code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, _, v) = send(
        &app,
        reqwest::Method::DELETE,
        "/v1/keys/garbage",
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
}

// The seed's life cycle: register → use → see usage → hit the free limit → 429 → upgrade →
// higher limits → downgrade.
on_both!(user_life_cycle_through_the_free_limit_and_plan_changes);
async fn user_life_cycle_through_the_free_limit_and_plan_changes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (s, _, plans) = send(&app, reqwest::Method::GET, "/v1/plans", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = plans["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["free", "pro", "business"]);
    assert_eq!(plans["plans"][1]["price"]["amount"], 1200);

    let r = register(&app, "life@example.com").await;
    for i in 1..=3 {
        let (s, h, v) = send(
            &app,
            reqwest::Method::POST,
            "/v1/meter",
            Some(&r.key),
            Some(json!({"metric": "videos"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (
                v["allowed"].as_bool(),
                v["used"].as_i64(),
                v["limit"].as_i64(),
                v["remaining"].as_i64()
            ),
            (Some(true), Some(i), Some(3), Some(3 - i))
        );
        assert!(v["resets_at"].is_string());
        assert!(h.contains_key("ratelimit-remaining"));
    }
    let (s, _, usage) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me/usage",
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(usage["plan"], "free@1");
    assert_eq!(usage["metrics"]["videos"]["used"], 3);
    assert_eq!(usage["metrics"]["videos"]["remaining"], 0);
    assert_eq!(usage["metrics"]["videos"]["unlimited"], false);

    let res = app
        .http
        .post(app.url("/v1/meter"))
        .bearer_auth(&r.key)
        .header("x-request-id", "req-over-the-limit")
        .json(&json!({"metric": "videos"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(
        res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    let v: Value = res.json().await.unwrap();
    let e = &v["error"];
    assert_eq!(e["code"], "quota_exceeded");
    assert_eq!(e["request_id"], "req-over-the-limit");
    assert_eq!(
        (
            e["metric"].as_str(),
            e["plan"].as_str(),
            e["limit"].as_i64(),
            e["used"].as_i64(),
            e["remaining"].as_i64()
        ),
        (Some("videos"), Some("free"), Some(3), Some(3), Some(0))
    );
    assert_eq!(e["upgrade_to"], "pro");
    assert!(e["resets_at"].is_string());

    // The refusal was recorded with its facts.
    let mut decision = None;
    for _ in 0..50 {
        if let Ok(d) = app.engine.decision("req-over-the-limit").await {
            decision = Some(d);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let d = decision.expect("the refusal is recorded");
    assert_eq!(d.code, "quota_exceeded");
    assert_eq!(d.key_prefix.as_deref(), Some(&r.key[..12]));
    assert_eq!(d.facts["plan_version"], "free@1");
    assert_eq!(d.facts["details"]["limit"], 3);

    let id = tollgate::domain::UserId::parse(&r.user_id).unwrap();
    app.engine
        .change_plan(&id, "pro", tollgate::service::subscriptions::Effective::Now)
        .await
        .unwrap();
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter",
        Some(&r.key),
        Some(json!({"metric": "videos", "amount": 5})),
    )
    .await;
    assert_eq!(
        (s, v["limit"].as_i64(), v["used"].as_i64()),
        (StatusCode::OK, Some(30), Some(8))
    );
    let (_, _, sub) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me/subscription",
        Some(&r.access),
        None,
    )
    .await;
    assert_eq!(
        (sub["plan"].as_str(), sub["status"].as_str()),
        (Some("pro@1"), Some("active"))
    );
    let (_, _, ent) = send(
        &app,
        reqwest::Method::GET,
        "/v1/entitlements/vision",
        Some(&r.key),
        None,
    )
    .await;
    assert_eq!(
        (ent["allowed"].as_bool(), ent["plan"].as_str()),
        (Some(true), Some("pro"))
    );
    let (_, _, ent) = send(
        &app,
        reqwest::Method::GET,
        "/v1/entitlements/blog",
        Some(&r.key),
        None,
    )
    .await;
    assert_eq!(
        (ent["allowed"].as_bool(), ent["upgrade_to"].as_str()),
        (Some(false), Some("business"))
    );

    let sub = app
        .engine
        .change_plan(
            &id,
            "free",
            tollgate::service::subscriptions::Effective::PeriodEnd,
        )
        .await
        .unwrap();
    app.clock
        .set(sub.current_period_end + chrono::Duration::days(1));
    let (_, _, usage) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me/usage",
        Some(&r.key),
        None,
    )
    .await;
    assert_eq!(
        (
            usage["plan"].as_str(),
            usage["metrics"]["videos"]["limit"].as_i64()
        ),
        (Some("free@1"), Some(3))
    );

    let (s, _, hist) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me/usage/history?days=60&metric=videos",
        Some(&r.key),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(hist[0]["used"], 8);
    let (s, _, v) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me/usage/history?days=0",
        Some(&r.key),
        None,
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (s, _, v) = send(
        &app,
        reqwest::Method::GET,
        "/v1/me/usage/history?days=abc",
        Some(&r.key),
        None,
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
}

on_both!(meter_idempotency_release_and_bad_input);
async fn meter_idempotency_release_and_bad_input(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let r = register(&app, "m@example.com").await;
    let body = json!({"metric": "videos", "idempotency_key": "render-1"});
    let (_, _, first) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter",
        Some(&r.key),
        Some(body.clone()),
    )
    .await;
    let (_, _, again) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter",
        Some(&r.key),
        Some(body),
    )
    .await;
    assert_eq!(first["event_id"], again["event_id"]);
    assert_eq!(again["replayed"], true);
    let (s, _, rel) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter/release",
        Some(&r.key),
        Some(json!({"idempotency_key": "render-1"})),
    )
    .await;
    assert_eq!((s, rel["used"].as_i64()), (StatusCode::OK, Some(0)));
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter/release",
        Some(&r.key),
        Some(json!({"idempotency_key": "render-1"})),
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::CONFLICT, "already_released")
    );
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter",
        Some(&r.key),
        Some(json!({"metric": "gigawatts"})),
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_metric")
    );
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter",
        Some(&r.key),
        Some(json!({"metric": "videos", "amount": -1})),
    )
    .await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (s, _, v) = send(
        &app,
        reqwest::Method::POST,
        "/v1/meter",
        Some(&r.key),
        Some(json!({"amount": 1})),
    )
    .await;
    assert_eq!(
        (s, error_code(&v), v["error"]["fields"][0]["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("metric")
        )
    );
}

on_both!(malformed_requests_get_the_error_shape_never_a_500);
async fn malformed_requests_get_the_error_shape_never_a_500(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.http.body_limit_bytes = 1024).await else {
        return;
    };
    let post = |body: &'static str, ct: Option<&'static str>| {
        let mut req = app.http.post(app.url("/v1/auth/register")).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let res = post("{not json", Some("application/json")).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_json"
    );
    let res = post("email=a", Some("application/x-www-form-urlencoded"))
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "unsupported_media_type"
    );
    let big = app
        .http
        .post(app.url("/v1/auth/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"email\": \"{}\"}}", "a".repeat(4096)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.json::<Value>().await.unwrap()["error"]["code"],
        "body_too_large"
    );
    let res = app.http.put(app.url("/v1/plans")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
}

on_both!(login_is_rate_limited_per_client_ip_behind_trusted_proxies_only);
async fn login_is_rate_limited_per_client_ip_behind_trusted_proxies_only(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]
    })
    .await
    else {
        return;
    };
    // A new account each time: failures for one account have their own, lower limit
    // (tests/api/hardening.rs).
    let login = |xff: &'static str, i: usize| {
        app.http
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", xff)
            .json(&json!({"email": format!("nobody{i}@example.com"), "password": "password1"}))
            .send()
    };
    for i in 0..60 {
        let res = login("198.51.100.10", i).await.unwrap();
        assert_eq!(res.status(), 401, "attempt {i}");
        assert_eq!(
            res.headers()["ratelimit-remaining"],
            (59 - i).to_string().as_str()
        );
    }
    let res = login("198.51.100.10", 60).await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(
        res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["scope"],
        "login"
    );
    // Another client behind the same proxy is counted apart.
    assert_eq!(login("198.51.100.11", 61).await.unwrap().status(), 401);
}

on_both!(forwarded_for_is_ignored_from_untrusted_peers);
async fn forwarded_for_is_ignored_from_untrusted_peers(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for i in 0..20 {
        let res = app
            .http
            .post(app.url("/v1/auth/register"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({"email": format!("u{i}@example.com"), "password": "password1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let res = app
        .http
        .post(app.url("/v1/auth/register"))
        .header("x-forwarded-for", "203.0.113.200")
        .json(&json!({"email": "spoof@example.com", "password": "password1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        429,
        "a spoofed header does not reset the per-IP limit"
    );
}

on_both!(plan_rate_limit_applies_to_authenticated_routes);
async fn plan_rate_limit_applies_to_authenticated_routes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let r = register(&app, "rl@example.com").await;
    for _ in 0..10 {
        let (s, h, _) = send(&app, reqwest::Method::GET, "/v1/me", Some(&r.key), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["ratelimit-limit"], "10");
    }
    let (s, h, v) = send(&app, reqwest::Method::GET, "/v1/me", Some(&r.key), None).await;
    assert_eq!(
        (s, error_code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(h.contains_key("retry-after"));
    assert_eq!(v["error"]["limit"], 10);
}

#[tokio::test]
async fn openapi_documents_every_route_and_docs_page_is_served() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let routes = [
        ("post", "/v1/auth/register"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/refresh"),
        ("post", "/v1/auth/logout"),
        ("get", "/v1/me"),
        ("patch", "/v1/me"),
        ("delete", "/v1/me"),
        ("post", "/v1/me/password"),
        ("get", "/v1/me/sessions"),
        ("delete", "/v1/me/sessions/{id}"),
        ("get", "/v1/keys"),
        ("post", "/v1/keys"),
        ("delete", "/v1/keys/{id}"),
        ("get", "/v1/plans"),
        ("get", "/v1/me/subscription"),
        ("get", "/v1/me/usage"),
        ("get", "/v1/me/usage/history"),
        ("post", "/v1/meter"),
        ("post", "/v1/meter/release"),
        ("get", "/v1/entitlements/{feature}"),
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
    ];
    for (method, path) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing from /openapi.json"
        );
    }
    // And every documented route is served (not a 404 from the fallback).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let url = app.url(
                &path
                    .replace("{id}", "x")
                    .replace("{feature}", "x")
                    .replace("{request_id}", "x"),
            );
            let res = app
                .http
                .request(method.to_uppercase().parse().unwrap(), url)
                .send()
                .await
                .unwrap();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            assert_ne!(
                body["error"]["code"], "route_not_found",
                "{method} {path} is documented but not routed"
            );
        }
    }
    // Every reference resolves (an enum used only in a query once left a dangling `$ref`).
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
    let page = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/openapi.json") && !html.contains("cdn"),
        "the docs page loads nothing from elsewhere"
    );
}

#[tokio::test]
async fn docs_page_is_the_bundled_api_reference_pointed_at_this_server() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // The build embeds the renderer whenever scripts/api-reference has put it on disk.
    let on_disk = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/api-reference/standalone.js")
        .is_file();
    assert_eq!(tollgate::http::docs::has_renderer(), on_disk);

    let page = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let script = app
        .http
        .get(app.url("/docs/scalar.js"))
        .send()
        .await
        .unwrap();
    if on_disk {
        assert!(html.contains(r#"<script src="/docs/scalar.js"#), "{html}");
        assert!(html.contains("url: '/openapi.json'"), "{html}");
        assert!(html.contains("preferredSecurityScheme: 'bearer'"), "{html}");
        assert!(
            html.contains("window.location.origin"),
            "try it calls this server"
        );
        assert!(
            !html.contains("https://"),
            "the page loads nothing from elsewhere"
        );
        assert_eq!(script.status(), 200);
        assert_eq!(
            script.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        let js = script.text().await.unwrap();
        assert!(js.contains("createApiReference"), "not Scalar's bundle");
        assert!(js.len() > 1_000_000, "the whole standalone bundle");
    } else {
        assert!(html.contains("scripts/api-reference"), "says how to add it");
        assert_eq!(script.status(), StatusCode::NOT_FOUND);
    }
    // What the page shows about authentication and errors comes from the document.
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let intro = doc["info"]["description"].as_str().unwrap();
    assert!(intro.contains("Authorization: Bearer") && intro.contains("error.code"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

on_both!(metrics_count_requests_by_route_template_and_meter_decisions);
async fn metrics_count_requests_by_route_template_and_meter_decisions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let r = register(&app, "metrics@example.com").await;
    let admin = staff_token(&app, "ops@example.com", tollgate::domain::Role::Admin).await;
    let meter = |metric: &'static str| {
        send(
            &app,
            reqwest::Method::POST,
            "/v1/meter",
            Some(&r.key),
            Some(json!({ "metric": metric })),
        )
    };
    for _ in 0..4 {
        meter("videos").await;
    }
    assert_eq!(meter("no-such-metric").await.0, 422);
    // Two different ids, one route template.
    for id in ["key_0000metricsfirst", "key_0000metricssecond"] {
        let (status, _, _) = send(
            &app,
            reqwest::Method::DELETE,
            &format!("/v1/keys/{id}"),
            Some(&r.access),
            None,
        )
        .await;
        assert_eq!(status, 404);
    }
    let (status, _, body) = send(
        &app,
        reqwest::Method::GET,
        "/scanner/wp-admin.php",
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "route_not_found")
    );
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    assert_eq!(send(&app, brew, "/health", None, None).await.0, 405);

    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = res.text().await.unwrap();

    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    has("# TYPE http_server_request_duration_seconds histogram");
    has(
        r#"http_server_request_duration_seconds_count{method="POST",route="/v1/meter",status="200"} 3"#,
    );
    has(
        r#"http_server_request_duration_seconds_count{method="POST",route="/v1/meter",status="429"} 1"#,
    );
    has(
        r#"http_server_request_duration_seconds_bucket{method="POST",route="/v1/meter",status="200",le="+Inf"} 3"#,
    );
    has(
        r#"http_server_request_duration_seconds_count{method="DELETE",route="/v1/keys/{id}",status="404"} 2"#,
    );
    has(
        r#"http_server_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1"#,
    );
    has(
        r#"http_server_request_duration_seconds_count{method="_OTHER",route="/health",status="405"} 1"#,
    );
    assert!(
        !text.contains("metricsfirst") && !text.contains("wp-admin"),
        "{text}"
    );
    has(r#"tollgate_meter_decisions_total{metric="videos",decision="allowed"} 3"#);
    has(r#"tollgate_meter_decisions_total{metric="videos",decision="quota_exceeded"} 1"#);
    // A name the catalog does not declare is not a label value.
    has(r#"tollgate_meter_decisions_total{metric="undeclared",decision="unknown_metric"} 1"#);
    assert!(!text.contains("no-such-metric"), "{text}");
    has(r#"tollgate_http_errors_total{code="route_not_found"} 1"#);
    has(r#"tollgate_http_errors_total{code="quota_exceeded"} 1"#);
    has(r#"tollgate_http_errors_total{code="not_found"} 2"#);
    has(r#"tollgate_build_info{version="0.1.0"} 1"#);
    let pools = text
        .lines()
        .filter(|l| l.starts_with("tollgate_db_pool_max_connections{pool="))
        .count();
    assert_eq!(
        pools,
        if backend == Backend::Sqlite { 2 } else { 1 },
        "{text}"
    );
    assert!(
        text.contains("tollgate_db_pool_idle_connections{pool="),
        "{text}"
    );

    // The back office reads the same counters.
    let (status, traffic) = call(
        &app,
        reqwest::Method::GET,
        "/v1/admin/traffic",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{traffic}");
    let by_code = |code: &str| {
        traffic["errors_by_code"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == code)
            .map(|c| c["count"].as_i64().unwrap())
    };
    assert_eq!(by_code("route_not_found"), Some(1));
    assert_eq!(by_code("not_found"), Some(2));
    assert!(traffic["requests"].as_i64().unwrap() >= 11, "{traffic}");
    assert!(traffic["requests_per_second"].as_f64().unwrap() > 0.0);
}
