//! Hardening through HTTP: forged and stale tokens, login timing and guessing, secrets in the
//! logs, injection strings, hostile JSON bodies, and the database going away mid-request.
//! Related cases live beside their features and are listed in docs/hardening.md (refresh token
//! reuse in accounts.rs, webhook timestamps and secrets in stripe.rs, impersonation limits in
//! admin.rs, Stripe timing out in stripe.rs, SIGKILL under load in durability.rs).

use crate::helpers::*;
use crate::on_both;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::{Duration, Instant};

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The server's token key, derived from the test secret as the server derives it: a token
/// signed with it under another algorithm must still be refused.
fn jwt_key() -> Vec<u8> {
    hmac_sha256(crate::process::SECRET.as_bytes(), b"tollgate/jwt/v1")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A token with any header, signed with HMAC-SHA256 under `key` (or unsigned).
fn handmade(header: Value, claims: &Value, key: Option<&[u8]>) -> String {
    let input = format!("{}.{}", b64(&header), b64(claims));
    let sig = key
        .map(|k| URL_SAFE_NO_PAD.encode(hmac_sha256(k, input.as_bytes())))
        .unwrap_or_default();
    format!("{input}.{sig}")
}

async fn me_status(app: &TestApp, token: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    send(app, Method::GET, "/v1/me", Some(token), None).await
}

on_both!(forged_expired_and_revoked_access_tokens_are_refused);
async fn forged_expired_and_revoked_access_tokens_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = register(&app, "jwt@example.com").await;
    let claims = app.engine.decode_access_token(&user.access).unwrap();
    let payload = serde_json::to_value(&claims).unwrap();
    let key = jwt_key();

    // The key is the server's: the same claims signed HS256 with it are accepted.
    let genuine = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert_eq!(me_status(&app, &genuine).await.0, StatusCode::OK);

    let mut admin = payload.clone();
    admin["role"] = json!("admin");
    let real_sig = user.access.rsplit('.').next().unwrap();
    let forged = [
        (
            "alg none",
            handmade(json!({"alg": "none", "typ": "JWT"}), &payload, None),
        ),
        (
            "alg None",
            handmade(json!({"alg": "None", "typ": "JWT"}), &payload, None),
        ),
        (
            "HS512 with the right key",
            encode(
                &Header::new(Algorithm::HS512),
                &claims,
                &EncodingKey::from_secret(&key),
            )
            .unwrap(),
        ),
        (
            "RS256 header, HMAC signature (algorithm confusion)",
            handmade(json!({"alg": "RS256", "typ": "JWT"}), &payload, Some(&key)),
        ),
        (
            "another key",
            handmade(
                json!({"alg": "HS256", "typ": "JWT"}),
                &payload,
                Some(b"not-the-server-key"),
            ),
        ),
        (
            "claims changed under the genuine signature",
            format!(
                "{}.{}.{real_sig}",
                b64(&json!({"alg": "HS256", "typ": "JWT"})),
                b64(&admin)
            ),
        ),
        ("truncated", user.access[..user.access.len() - 4].to_owned()),
        ("not a token", "eyJhbGciOiJIUzI1NiJ9".to_owned()),
    ];
    for (what, token) in &forged {
        let (status, headers, body) = me_status(&app, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(error_code(&body), "invalid_token", "{what}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
        assert!(headers.contains_key("www-authenticate"), "{what}");
    }

    // A revoked session: its token stops at once.
    let (status, _) = call(&app, Method::POST, "/v1/auth/logout", &user.access, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, body) = me_status(&app, &user.access).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "session_revoked")
    );

    // An expired one, even with a live session.
    let fresh = login_with(&app, "jwt@example.com", "password1", None).await;
    assert_eq!(fresh.0, StatusCode::OK, "{}", fresh.1);
    let token = fresh.1["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me_status(&app, &token).await.0, StatusCode::OK);
    app.clock.advance(chrono::Duration::seconds(15 * 60 + 1));
    let (status, _, body) = me_status(&app, &token).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "token_expired")
    );
}

/// `POST /v1/auth/login`, from `ip` (as `X-Forwarded-For`, for apps that trust loopback).
async fn login_with(
    app: &TestApp,
    email: &str,
    password: &str,
    ip: Option<&str>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = app
        .http
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(ip) = ip {
        req = req.header("x-forwarded-for", ip);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

on_both!(login_takes_as_long_for_an_unknown_email_as_for_a_wrong_password);
async fn login_takes_as_long_for_an_unknown_email_as_for_a_wrong_password(backend: Backend) {
    // The production password hashing cost: the work that must not be skipped is argon2's.
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.argon2 = tollgate::Settings::for_database("sqlite::memory:").argon2;
    })
    .await
    else {
        return;
    };
    new_user(&app, "known@example.com").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..48 {
        // The login limits (per address, per account) are not what is measured here.
        if i % 8 == 0 {
            app.clock.advance(chrono::Duration::hours(2));
        }
        // Interleaved, in alternating order, so that load on the machine hits both alike.
        let order = if i % 2 == 0 {
            ["known@example.com", "nobody@example.com"]
        } else {
            ["nobody@example.com", "known@example.com"]
        };
        for email in order {
            let t = Instant::now();
            let (status, body, _) = login_with(&app, email, "wrong-password", None).await;
            let took = t.elapsed();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            assert_eq!(error_code(&body), "invalid_credentials");
            if i >= 4 {
                // The first rounds warm the connections and caches up.
                if email == "known@example.com" {
                    known.push(took);
                } else {
                    unknown.push(took);
                }
            }
        }
    }
    let (k, u) = (median(known), median(unknown));
    let ratio = k.as_secs_f64() / u.as_secs_f64();
    eprintln!("login medians: known {k:?}, unknown {u:?}, ratio {ratio:.2}");
    assert!(
        (0.67..=1.5).contains(&ratio),
        "a wrong password takes {k:?} (median), an unknown email {u:?}: the difference tells which accounts exist"
    );
}

on_both!(failed_logins_are_limited_per_account_without_locking_the_owner_out);
async fn failed_logins_are_limited_per_account_without_locking_the_owner_out(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]
    })
    .await
    else {
        return;
    };
    new_user(&app, "victim@example.com").await;
    let victim = "victim@example.com";
    // The owner has signed in from home before.
    let home = "192.0.2.1";
    assert_eq!(
        login_with(&app, victim, "password1", Some(home)).await.0,
        StatusCode::OK
    );

    // One address: ten guesses, then even the right password waits for the window's end.
    let attacker = "198.51.100.7";
    for i in 0..10 {
        let (status, body, _) = login_with(&app, victim, "guess", Some(attacker)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {i}: {body}");
    }
    let (status, body, headers) = login_with(&app, victim, "password1", Some(attacker)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(error_code(&body), "too_many_login_attempts");
    assert_eq!(body["error"]["scope"], "login_account");
    let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "retry after {retry} s");
    // An unknown email is counted the same way: the answers do not tell accounts apart.
    for _ in 0..10 {
        login_with(&app, "ghost@example.com", "guess", Some(attacker)).await;
    }
    let (status, body, _) = login_with(&app, "ghost@example.com", "guess", Some(attacker)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_login_attempts")
    );

    // Many addresses: after fifty failures in all, addresses the account never used wait too…
    for i in 0..40 {
        let ip = format!("203.0.113.{i}");
        let (status, _, _) = login_with(&app, victim, "guess", Some(&ip)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body, _) = login_with(&app, victim, "password1", Some("203.0.113.200")).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_login_attempts")
    );
    // …but the owner, from an address they signed in from, is not locked out.
    let (status, body, _) = login_with(&app, victim, "password1", Some(home)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // And no lock outlasts its window.
    app.clock.advance(chrono::Duration::hours(1));
    let (status, body, _) = login_with(&app, victim, "password1", Some(attacker)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

const INJECTIONS: &[&str] = &[
    "Robert'); DROP TABLE users;--",
    "' OR '1'='1",
    "\" OR 1=1 --",
    "x'; UPDATE users SET role='admin' WHERE '1'='1",
    "%' OR email LIKE '%",
    "1; SELECT pg_sleep(5)--",
    "\\'; --",
    // LIKE and FTS5 wildcards in a search: they must match themselves only.
    "%",
    "%%%",
    "___",
    "\"*\"",
];

async fn access(app: &TestApp, email: &str, password: &str) -> String {
    let (status, body, _) = login_with(app, email, password, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

on_both!(injection_strings_are_kept_verbatim_or_refused_never_run);
async fn injection_strings_are_kept_verbatim_or_refused_never_run(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let staff = staff_token(&app, "staff@example.com", tollgate::domain::Role::Admin).await;
    register(&app, "o'brien@example.com").await;
    let (_, page) = call(&app, Method::GET, "/v1/admin/users?limit=200", &staff, None).await;
    let total = page["total"].clone();
    assert!(total.as_i64().unwrap() >= 2, "{page}");
    for text in INJECTIONS {
        // The free plan's request limit is not what is tested here: an hour later, signed in
        // again.
        app.clock.advance(chrono::Duration::hours(1));
        let staff = access(&app, "staff@example.com", "staff-password").await;
        let user_access = access(&app, "o'brien@example.com", "password1").await;
        // Text fields: stored and returned exactly.
        let (status, body) = call(
            &app,
            Method::PATCH,
            "/v1/me",
            &user_access,
            Some(json!({"full_name": text})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}: {body}");
        let (status, me) = call(&app, Method::GET, "/v1/me", &user_access, None).await;
        assert_eq!(
            (status, &me["full_name"]),
            (StatusCode::OK, &json!(text)),
            "{me}"
        );
        let (status, key) = call(
            &app,
            Method::POST,
            "/v1/keys",
            &user_access,
            Some(json!({"name": text})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{text}: {key}");
        assert_eq!(key["key"]["name"], *text);

        // Query parameters: they match nothing, or are refused; they never widen a search.
        for param in ["q", "plan", "cursor", "status", "sort", "created_after"] {
            let path = format!(
                "/v1/admin/users?{param}={}",
                url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
            );
            let (status, body) = call(&app, Method::GET, &path, &staff, None).await;
            match status {
                StatusCode::OK => assert_eq!(body["users"], json!([]), "{path}: {body}"),
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                    assert!(body["error"]["code"].is_string(), "{path}: {body}")
                }
                other => panic!("{path}: {other} {body}"),
            }
        }
        // An email with a quote in it logs in as itself, and an injection as email is refused.
        let (status, body, _) = login_with(&app, text, "password1", None).await;
        assert!(
            matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{text}: {status} {body}"
        );
    }
    let (status, _, _) = login_with(&app, "o'brien@example.com", "password1", None).await;
    assert_eq!(status, StatusCode::OK);
    // Everything is still there, and nobody became staff.
    app.clock.advance(chrono::Duration::hours(1));
    let staff = access(&app, "staff@example.com", "staff-password").await;
    let user_access = access(&app, "o'brien@example.com", "password1").await;
    let (status, page) = call(&app, Method::GET, "/v1/admin/users?limit=200", &staff, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], total, "{page}");
    let (_, me) = call(&app, Method::GET, "/v1/me", &user_access, None).await;
    assert_eq!(me["role"], "user");
}

on_both!(oversized_and_deeply_nested_bodies_are_refused_with_the_error_shape);
async fn oversized_and_deeply_nested_bodies_are_refused_with_the_error_shape(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = register(&app, "bodies@example.com").await;
    let post = |path: &'static str, body: String| {
        app.http
            .post(app.url(path))
            .bearer_auth(&user.access)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let deep = |n: usize| format!("{{\"name\": {}1{}}}", "[".repeat(n), "]".repeat(n));
    let cases = [
        ("nested 200 deep", "/v1/keys", deep(200)),
        ("nested 30000 deep", "/v1/keys", deep(30_000)),
        (
            "nested objects",
            "/v1/meter",
            format!("{}{}", "{\"a\":".repeat(5000), "}".repeat(5000)),
        ),
        (
            "1 MiB",
            "/v1/keys",
            format!("{{\"name\": \"{}\"}}", "a".repeat(1 << 20)),
        ),
        (
            "1 MiB of whitespace",
            "/v1/meter",
            format!("{{{}}}", " ".repeat(1 << 20)),
        ),
    ];
    for (what, path, body) in cases {
        // A server may answer an oversized body before reading all of it and close the
        // connection (RFC 9110, 15.5.14); the client, still sending, can then lose the answer
        // to the reset. Such a transport error is tried again; an answer is always checked.
        let mut tries = 0;
        let res = loop {
            match post(path, body.clone()).await {
                Ok(res) => break res,
                Err(e) if tries < 5 && (e.is_request() || e.is_connect()) => tries += 1,
                Err(e) => panic!("{what}: {e}"),
            }
        };
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(
            matches!(
                status,
                StatusCode::BAD_REQUEST
                    | StatusCode::PAYLOAD_TOO_LARGE
                    | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{what}: {status} {body}"
        );
        assert!(body["error"]["code"].is_string(), "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
    }
    // The server is still well. Asked on a new connection: a pooled one may be one the server
    // closed after an oversized body, and the client would report that as a broken pipe.
    let res = reqwest::Client::new()
        .get(app.url("/v1/me"))
        .bearer_auth(&user.access)
        .send()
        .await
        .expect("the server answers a new connection");
    assert_eq!(res.status(), StatusCode::OK);
}

/// Every plaintext secret a full run hands out or takes in is absent from the server's log at
/// debug level: passwords, access and refresh tokens, API keys, webhook secret and signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_token_or_key_reaches_the_log_at_debug_level() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let webhook_secret = "whsec_logged_never_0123456789";
    let server = crate::process::start_server_logging(
        &db.url,
        &[
            ("TOLLGATE_LOG", "debug"),
            ("RUST_LOG", "debug"),
            ("TOLLGATE_STRIPE_WEBHOOK_SECRET", webhook_secret),
            ("TOLLGATE_ARGON2__MEMORY_KIB", "1024"),
            ("TOLLGATE_ARGON2__ITERATIONS", "1"),
        ],
        log,
    );
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.base);
    let mut secrets: Vec<String> = vec![webhook_secret.into()];

    let password = "pass-Word-4-logs-xyzzy";
    let reg: Value = http
        .post(url("/v1/auth/register"))
        .json(&json!({"email": "logs@example.com", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(password.into());
    for f in ["access_token", "refresh_token", "api_key"] {
        secrets.push(reg[f].as_str().unwrap().into());
    }
    let access = reg["access_token"].as_str().unwrap().to_owned();
    let auth = |t: &str| format!("Bearer {t}");

    // A wrong password, a right one, a refresh, a reused refresh token.
    let wrong = "wrong-Password-logged-never";
    secrets.push(wrong.into());
    for p in [wrong, password] {
        let res: Value = http
            .post(url("/v1/auth/login"))
            .json(&json!({"email": "logs@example.com", "password": p}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(t) = res["access_token"].as_str() {
            secrets.push(t.into());
            secrets.push(res["refresh_token"].as_str().unwrap().into());
        }
    }
    let rt = reg["refresh_token"].as_str().unwrap();
    for _ in 0..2 {
        let res: Value = http
            .post(url("/v1/auth/refresh"))
            .json(&json!({"refresh_token": rt}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(t) = res["access_token"].as_str() {
            secrets.push(t.into());
            secrets.push(res["refresh_token"].as_str().unwrap().into());
        }
    }
    // A second key, used (valid, then a forged one of the right shape), then revoked.
    let login: Value = http
        .post(url("/v1/auth/login"))
        .json(&json!({"email": "logs@example.com", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access2 = login["access_token"].as_str().unwrap().to_owned();
    secrets.push(access2.clone());
    secrets.push(login["refresh_token"].as_str().unwrap().into());
    let key: Value = http
        .post(url("/v1/keys"))
        .header("authorization", auth(&access2))
        .json(&json!({"name": "second"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let plaintext = key["api_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no key in {key}"))
        .to_owned();
    secrets.push(plaintext.clone());
    let forged_key = format!("sk_live_{}", "Z".repeat(40));
    secrets.push(forged_key.clone());
    for k in [&plaintext, &forged_key] {
        http.post(url("/v1/meter"))
            .header("authorization", auth(k))
            .json(&json!({"metric": "requests"}))
            .send()
            .await
            .unwrap();
        http.get(url("/v1/me"))
            .header("authorization", auth(k))
            .send()
            .await
            .unwrap();
    }
    // A password change, and a webhook delivery with a genuine signature.
    let new_password = "new-Pass-word-logged-never";
    secrets.push(new_password.into());
    http.post(url("/v1/me/password"))
        .header("authorization", auth(&access))
        .json(&json!({"current_password": password, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    let body = event_file("single-events/12-payment_intent.created.json");
    let signature = stripe_signature(&body, webhook_secret, chrono::Utc::now().timestamp());
    secrets.push(signature.split("v1=").nth(1).unwrap().to_owned());
    let res = http
        .post(url("/v1/stripe/webhook"))
        .header("content-type", "application/json")
        .header("stripe-signature", &signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    drop(server);

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.lines().count() > 20 && text.contains("DEBUG"),
        "the log was not captured at debug level:\n{text}"
    );
    for s in &secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s.as_str()),
            "a secret reached the log: {}…",
            &s[..6]
        );
    }
}

/// Another process holds SQLite's write lock longer than the busy timeout: writes answer 503
/// with the error shape, reads go on, and once the lock is gone all works without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_answers_503_and_recovers_without_a_restart() {
    use sqlx::{Connection, Executor};
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let user = register(&app, "lock@example.com").await;
    let mut holder = sqlx::sqlite::SqliteConnection::connect(&app.db.url)
        .await
        .unwrap();
    holder.execute("BEGIN EXCLUSIVE").await.unwrap();

    let t = Instant::now();
    let (status, headers, body) = send(
        &app,
        Method::PATCH,
        "/v1/me",
        Some(&user.access),
        Some(json!({"full_name": "During the lock"})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "database_unavailable");
    assert!(body["error"]["message"].is_string());
    assert!(headers.contains_key("x-request-id"));
    assert!(t.elapsed() < Duration::from_secs(30));

    holder.execute("ROLLBACK").await.unwrap();
    holder.close().await.unwrap();
    let (status, body) = call(
        &app,
        Method::PATCH,
        "/v1/me",
        &user.access,
        Some(json!({"full_name": "After the lock"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["full_name"], "After the lock");
}

// SIGTERM in the middle of a metering load: the server stops taking new work, finishes what it
// accepted, answers it, and exits cleanly; every answered consumption is stored, and nothing is
// stored that was not answered.
on_both!(sigterm_under_load_finishes_in_flight_requests_and_loses_nothing);
async fn sigterm_under_load_finishes_in_flight_requests_and_loses_nothing(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let keys = crate::durability::customers(&db.url).await;
    let mut server = crate::process::start_server(&db.url);
    let acks = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for c in 0..16 {
        let (http, acks, base) = (http.clone(), acks.clone(), server.base.clone());
        let key = keys[c % keys.len()].clone();
        clients.push(tokio::spawn(async move {
            let mut refused = 0;
            for i in 0.. {
                let idem = format!("term-{c}-{i}");
                let res = http
                    .post(format!("{base}/v1/meter"))
                    .bearer_auth(&key)
                    .json(&json!({"metric": "calls", "idempotency_key": idem}))
                    .send()
                    .await;
                // After the signal: connections are refused or closed, never answered 5xx.
                let Ok(res) = res else { break };
                let status = res.status();
                assert!(!status.is_server_error(), "{idem}: {status}");
                if status != StatusCode::OK {
                    refused += 1;
                    break;
                }
                let Ok(body) = res.json::<Value>().await else {
                    break;
                };
                assert_eq!(body["allowed"], true);
                acks.lock().unwrap().push((key.clone(), idem));
            }
            refused
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.lock().unwrap().len() < 200 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = server.child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let t = Instant::now();
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "the server exited with {exit}");
    for c in clients {
        c.await.unwrap();
    }
    let acked = acks.lock().unwrap().clone();

    // Exactly the answered consumptions are stored: each counter equals its events.
    let engine = tollgate::Engine::start(test_settings(&db.url))
        .await
        .unwrap();
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_events WHERE kind = 'consume'")
            .fetch_one(engine.db().read())
            .await
            .unwrap();
    let counted: i64 = sqlx::query_scalar("SELECT CAST(SUM(used) AS BIGINT) FROM usage_counters")
        .fetch_one(engine.db().read())
        .await
        .unwrap();
    assert_eq!(counted, events);
    assert_eq!(
        events,
        acked.len() as i64,
        "{events} stored for {} answered",
        acked.len()
    );
    let stored: std::collections::BTreeSet<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM usage_events WHERE kind = 'consume'")
            .fetch_all(engine.db().read())
            .await
            .unwrap()
            .into_iter()
            .collect();
    let answered: std::collections::BTreeSet<String> =
        acked.into_iter().map(|(_, idem)| idem).collect();
    assert_eq!(
        stored, answered,
        "the stored consumptions are not the answered ones"
    );
    engine.shutdown().await;
}
