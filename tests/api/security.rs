//! Account security end to end: mail over a real SMTP server on loopback, email verification,
//! password reset and TOTP two-factor, on SQLite and PostgreSQL.

use crate::helpers::*;
use crate::on_both;
use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn me(app: &TestApp, token: &str) -> Value {
    let (status, body) = call(app, Method::GET, "/v1/me", token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Delivers the outbox now and returns the mail the sink got for `to`.
async fn mail_for(app: &TestApp, sink: &MailSink, to: &str) -> Vec<ReceivedMail> {
    app.engine.deliver_due_mail().await.unwrap();
    sink.to(to)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, b) = send(app, Method::POST, path, None, Some(body)).await;
    (s, b)
}

on_both!(verification_mail_arrives_over_smtp_and_its_link_verifies_once);
async fn verification_mail_arrives_over_smtp_and_its_link_verifies_once(backend: Backend) {
    // Arrange
    let sink = MailSink::start();
    let Some(app) = spawn_with_mail(backend, &sink).await else {
        return;
    };
    let ada = register(&app, "ada@example.com").await;
    assert_eq!(me(&app, &ada.access).await["email_verified"], false);
    assert_eq!(me(&app, &ada.access).await["mfa_enabled"], false);

    // Act: the mail leaves through SMTP; its link carries the token.
    let mail = mail_for(&app, &sink, "ada@example.com").await;
    assert_eq!(mail.len(), 1);
    let text = mail[0].decoded();
    assert!(
        text.contains("Subject: Confirm your email address for Tollgate"),
        "{text}"
    );
    assert!(
        text.contains("From: Tollgate <no-reply@tollgate.test>"),
        "{text}"
    );
    assert!(
        text.contains("text/html") && text.contains("text/plain"),
        "{text}"
    );
    assert!(
        text.contains("https://tollgate.test/verify-email?token="),
        "{text}"
    );
    let token = mail[0].token("/verify-email");

    // The page the link opens shows a form and spends nothing.
    let page = app
        .http
        .get(app.url(&format!("/verify-email?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(&token));
    assert_eq!(me(&app, &ada.access).await["email_verified"], false);

    let (status, body) = post(&app, "/v1/auth/verify-email", json!({ "token": token })).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(me(&app, &ada.access).await["email_verified"], true);
    let (again, body) = post(&app, "/v1/auth/verify-email", json!({ "token": token })).await;
    assert_eq!(again, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "invalid_link_token");
    let (forged, body) = post(
        &app,
        "/v1/auth/verify-email",
        json!({ "token": "not-a-token" }),
    )
    .await;
    assert_eq!(forged, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "invalid_link_token");
    // Verified: nothing to resend.
    let (s, body) = call(
        &app,
        Method::POST,
        "/v1/auth/verify-email/resend",
        &ada.access,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "email_already_verified");
}

on_both!(verification_links_expire_and_resend_is_rate_limited);
async fn verification_links_expire_and_resend_is_rate_limited(backend: Backend) {
    // Arrange
    let sink = MailSink::start();
    let Some(app) = spawn_with_mail(backend, &sink).await else {
        return;
    };
    register(&app, "bob@example.com").await;
    let first = mail_for(&app, &sink, "bob@example.com").await[0].token("/verify-email");

    // Act: two days later the link has expired.
    app.clock.advance(Duration::hours(49));
    let (status, body) = post(&app, "/v1/auth/verify-email", json!({ "token": first })).await;

    // Assert
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "invalid_link_token");
    // Three new mails an hour, then 429.
    for _ in 0..3 {
        let (s, body) = call(
            &app,
            Method::POST,
            "/v1/auth/verify-email/resend",
            &fresh_access(&app, "bob@example.com").await,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    }
    let token = fresh_access(&app, "bob@example.com").await;
    let (s, body) = call(
        &app,
        Method::POST,
        "/v1/auth/verify-email/resend",
        &token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&body), "rate_limited");
    let mail = mail_for(&app, &sink, "bob@example.com").await;
    assert_eq!(mail.len(), 4);
    let fresh = mail[3].token("/verify-email");
    let (status, body) = post(&app, "/v1/auth/verify-email", json!({ "token": fresh })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An access token valid at the app's current (moved) clock.
async fn fresh_access(app: &TestApp, email: &str) -> String {
    let (s, body) = post(
        app,
        "/v1/auth/login",
        json!({ "email": email, "password": "password1" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

on_both!(mail_waits_in_the_outbox_without_smtp_and_retries_with_backoff);
async fn mail_waits_in_the_outbox_without_smtp_and_retries_with_backoff(backend: Backend) {
    // Arrange: no SMTP URL at all.
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    register(&app, "local@example.com").await;

    // Act and assert: nothing leaves; the outbox shows the mail, pending.
    assert!(!app.engine.mail_is_sent());
    assert_eq!(app.engine.deliver_due_mail().await.unwrap(), 0);
    let listed = app.engine.list_mail(None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "pending");
    assert_eq!(listed[0].template, "verify_email");
    let shown = app.engine.show_mail(&listed[0].id).await.unwrap();
    assert!(shown.body_text.contains("/verify-email?token="));
    assert!(shown.body_html.contains("<a href="));

    // An SMTP server that is not there: the attempt fails and waits, then tries again.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let Some(app) = TestApp::spawn_with(backend, move |s| {
        s.smtp_url = Some(tollgate::domain::SecretString::new(format!(
            "smtp://127.0.0.1:{port}"
        )));
    })
    .await
    else {
        return;
    };
    register(&app, "retry@example.com").await;
    assert_eq!(app.engine.deliver_due_mail().await.unwrap(), 0);
    let m = &app.engine.list_mail(None, 10).await.unwrap()[0];
    assert_eq!((m.status.as_str(), m.attempts), ("pending", 1));
    assert!(m.last_error.is_some());
    app.engine.deliver_due_mail().await.unwrap();
    assert_eq!(
        app.engine.list_mail(None, 10).await.unwrap()[0].attempts,
        1,
        "not due again before its backoff"
    );
    app.clock.advance(Duration::seconds(31));
    app.engine.deliver_due_mail().await.unwrap();
    assert_eq!(app.engine.list_mail(None, 10).await.unwrap()[0].attempts, 2);
}

on_both!(the_server_upkeep_delivers_mail_on_its_own);
async fn the_server_upkeep_delivers_mail_on_its_own(backend: Backend) {
    // Arrange
    let sink = MailSink::start();
    let Some(app) = spawn_with_mail(backend, &sink).await else {
        return;
    };
    let upkeep = app.engine.spawn_upkeep();

    // Act
    register(&app, "auto@example.com").await;

    // Assert: the sender wakes on the commit; no explicit delivery here.
    let mut waited = 0;
    while sink.to("auto@example.com").is_empty() && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    upkeep.abort();
    assert_eq!(sink.to("auto@example.com").len(), 1);
    let m = &app.engine.list_mail(None, 10).await.unwrap()[0];
    assert_eq!(m.status, "sent");
    assert!(m.sent_at.is_some());
}

on_both!(a_plan_can_require_a_verified_email_for_metered_use);
async fn a_plan_can_require_a_verified_email_for_metered_use(backend: Backend) {
    // Arrange: the free plan requires a verified email.
    let sink = MailSink::start();
    let Some(app) = spawn_with_mail(backend, &sink).await else {
        return;
    };
    let src = std::fs::read_to_string(format!(
        "{}/examples/plans.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replacen(
        "id = \"free\"\n",
        "id = \"free\"\nrequire_verified_email = true\n",
        1,
    );
    app.engine.apply_catalog(&src, None).await.unwrap();
    let u = register(&app, "meter@example.com").await;
    let meter = json!({ "metric": "videos" });

    // Act
    let (s, _, body) = send(
        &app,
        Method::POST,
        "/v1/meter",
        Some(&u.key),
        Some(meter.clone()),
    )
    .await;

    // Assert
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), "email_unverified");
    assert!(body["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("/v1/auth/verify-email/resend"));
    let token = mail_for(&app, &sink, "meter@example.com").await[0].token("/verify-email");
    let (s, body) = post(&app, "/v1/auth/verify-email", json!({ "token": token })).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _, body) = send(&app, Method::POST, "/v1/meter", Some(&u.key), Some(meter)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

on_both!(password_reset_answers_the_same_and_revokes_every_session);
async fn password_reset_answers_the_same_and_revokes_every_session(backend: Backend) {
    // Arrange
    let sink = MailSink::start();
    let Some(app) = spawn_with_mail(backend, &sink).await else {
        return;
    };
    let cy = register(&app, "cy@example.com").await;
    app.engine.deliver_due_mail().await.unwrap();

    // Act: a known and an unknown address get the same answer; only the known one gets mail.
    let known = post(
        &app,
        "/v1/auth/password-reset",
        json!({ "email": "cy@example.com" }),
    )
    .await;
    let unknown = post(
        &app,
        "/v1/auth/password-reset",
        json!({ "email": "nobody@example.com" }),
    )
    .await;
    let malformed = post(
        &app,
        "/v1/auth/password-reset",
        json!({ "email": "not an email" }),
    )
    .await;

    // Assert
    assert_eq!(known.0, StatusCode::ACCEPTED);
    assert_eq!(known, unknown);
    assert_eq!(known, malformed);
    let mail = mail_for(&app, &sink, "cy@example.com").await;
    assert_eq!(mail.len(), 2, "the verification mail and one reset mail");
    assert!(sink.to("nobody@example.com").is_empty());
    assert!(mail[1]
        .decoded()
        .contains("https://tollgate.test/reset-password?token="));
    let token = mail[1].token("/reset-password");
    // A second reset mail, outstanding while the first one is used.
    post(
        &app,
        "/v1/auth/password-reset",
        json!({ "email": "cy@example.com" }),
    )
    .await;
    let other = mail_for(&app, &sink, "cy@example.com").await[2].token("/reset-password");

    let (s, body) = post(
        &app,
        "/v1/auth/password-reset/confirm",
        json!({ "token": token, "password": "short" }),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "validation_failed");
    let (s, body) = post(
        &app,
        "/v1/auth/password-reset/confirm",
        json!({ "token": token, "password": "new-password-1" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["revoked_sessions"], 1);

    // Every earlier refresh token answers 401; the old password is gone, the new one works.
    let (s, body) = post(
        &app,
        "/v1/auth/refresh",
        json!({ "refresh_token": cy.refresh }),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, _) = post(
        &app,
        "/v1/auth/login",
        json!({ "email": "cy@example.com", "password": "password1" }),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = post(
        &app,
        "/v1/auth/login",
        json!({ "email": "cy@example.com", "password": "new-password-1" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Single use, and the other outstanding reset token was spent with it.
    for t in [&token, &other] {
        let (s, body) = post(
            &app,
            "/v1/auth/password-reset/confirm",
            json!({ "token": t, "password": "third-password" }),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_code(&body), "invalid_link_token");
    }
}

on_both!(reset_links_expire_after_thirty_minutes_and_requests_are_rate_limited);
async fn reset_links_expire_after_thirty_minutes_and_requests_are_rate_limited(backend: Backend) {
    // Arrange
    let sink = MailSink::start();
    let Some(app) = spawn_with_mail(backend, &sink).await else {
        return;
    };
    register(&app, "dee@example.com").await;
    post(
        &app,
        "/v1/auth/password-reset",
        json!({ "email": "dee@example.com" }),
    )
    .await;
    let token = mail_for(&app, &sink, "dee@example.com").await[1].token("/reset-password");

    // Act
    app.clock.advance(Duration::minutes(31));
    let (s, body) = post(
        &app,
        "/v1/auth/password-reset/confirm",
        json!({ "token": token, "password": "new-password-1" }),
    )
    .await;

    // Assert
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "invalid_link_token");
    // Per address: three an hour (whether or not an account has it).
    app.clock.advance(Duration::hours(1));
    for _ in 0..3 {
        assert_eq!(
            post(
                &app,
                "/v1/auth/password-reset",
                json!({ "email": "ghost@example.com" })
            )
            .await
            .0,
            StatusCode::ACCEPTED
        );
    }
    let (s, body) = post(
        &app,
        "/v1/auth/password-reset",
        json!({ "email": "ghost@example.com" }),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["scope"], "password_reset_email");
    // Per client IP: ten an hour across addresses.
    for i in 0..6 {
        let (s, _) = post(
            &app,
            "/v1/auth/password-reset",
            json!({ "email": format!("p{i}@example.com") }),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "request {i}");
    }
    let (s, body) = post(
        &app,
        "/v1/auth/password-reset",
        json!({ "email": "last@example.com" }),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["scope"], "password_reset");
}

fn code_at(secret: &str, t: chrono::DateTime<chrono::Utc>) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .with_account_name("test")
        .build()
        .unwrap();
    totp.generate(t.timestamp() as u64).to_string()
}

async fn login(app: &TestApp, email: &str) -> (StatusCode, Value) {
    post(
        app,
        "/v1/auth/login",
        json!({ "email": email, "password": "password1" }),
    )
    .await
}

/// Enrols `u` and returns the secret and the recovery codes.
async fn enrol(app: &TestApp, access: &str) -> (String, Vec<String>) {
    let (s, body) = call(app, Method::POST, "/v1/me/mfa/totp", access, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    let code = code_at(&secret, app.clock_now());
    let (s, body) = call(
        app,
        Method::POST,
        "/v1/me/mfa/totp/confirm",
        access,
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

on_both!(totp_enrolment_needs_a_good_code_and_stores_the_secret_sealed);
async fn totp_enrolment_needs_a_good_code_and_stores_the_secret_sealed(backend: Backend) {
    // Arrange
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = register(&app, "eve@example.com").await;

    // Act
    let (s, body) = call(&app, Method::POST, "/v1/me/mfa/totp", &u.access, None).await;

    // Assert
    assert_eq!(s, StatusCode::OK, "{body}");
    let secret = body["secret"].as_str().unwrap();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Tollgate:eve%40example.com?"),
        "{uri}"
    );
    assert!(
        uri.contains(&format!("secret={secret}")) && uri.contains("issuer=Tollgate"),
        "{uri}"
    );
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"));
    let stored: String = sqlx::query_scalar("SELECT secret_enc FROM mfa_totp WHERE user_id = $1")
        .bind(&u.user_id)
        .fetch_one(app.engine.db().read())
        .await
        .unwrap();
    assert!(!stored.contains(secret), "the secret is encrypted at rest");
    // An API key may not change two-factor settings.
    let (s, _, _) = send(&app, Method::POST, "/v1/me/mfa/totp", Some(&u.key), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A wrong code does not confirm; a code three steps away does not either.
    for code in [
        "000000".to_owned(),
        code_at(secret, app.clock_now() + Duration::seconds(90)),
    ] {
        let (s, body) = call(
            &app,
            Method::POST,
            "/v1/me/mfa/totp/confirm",
            &u.access,
            Some(json!({ "code": code })),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(error_code(&body), "invalid_mfa_code");
    }
    assert_eq!(me(&app, &u.access).await["mfa_enabled"], false);
    let (s, body) = login(&app, "eve@example.com").await;
    assert_eq!(
        s,
        StatusCode::OK,
        "unconfirmed enrolment changes nothing: {body}"
    );
    let code = code_at(secret, app.clock_now());
    let (s, body) = call(
        &app,
        Method::POST,
        "/v1/me/mfa/totp/confirm",
        &u.access,
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let codes = body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::BTreeSet<_> =
        codes.iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 10);
    assert_eq!(me(&app, &u.access).await["mfa_enabled"], true);
    let (s, body) = call(&app, Method::POST, "/v1/me/mfa/totp", &u.access, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "mfa_already_enabled");
}

on_both!(login_with_two_factor_takes_a_code_within_one_step_or_a_recovery_code_once);
async fn login_with_two_factor_takes_a_code_within_one_step_or_a_recovery_code_once(
    backend: Backend,
) {
    // Arrange
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = register(&app, "fay@example.com").await;
    let (secret, recovery) = enrol(&app, &u.access).await;
    app.clock.advance(Duration::seconds(120));

    // Act: the password alone is not enough.
    let (s, body) = login(&app, "fay@example.com").await;

    // Assert
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "mfa_required");
    assert!(body.get("access_token").is_none());
    let challenge = body["error"]["challenge"].as_str().unwrap().to_owned();
    let mfa = |body: Value| {
        let app = &app;
        async move { post(app, "/v1/auth/login/mfa", body).await }
    };
    // Two steps ahead and two behind are refused; one step behind (clock skew) is accepted.
    for off in [60, -60] {
        let code = code_at(&secret, app.clock_now() + Duration::seconds(off));
        let (s, body) = mfa(json!({ "challenge": challenge, "code": code })).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{off}: {body}");
        assert_eq!(error_code(&body), "invalid_mfa_code");
    }
    let behind = code_at(&secret, app.clock_now() - Duration::seconds(30));
    let (s, body) = mfa(json!({ "challenge": challenge, "code": behind })).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["user"]["id"], u.user_id.as_str());
    // The same code again (a replay) is refused.
    let (s, body) = mfa(json!({ "challenge": challenge, "code": behind })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    // One step ahead works too, once the clock moves past the used step.
    let ahead = code_at(&secret, app.clock_now() + Duration::seconds(30));
    let (s, body) = mfa(json!({ "challenge": challenge, "code": ahead })).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // A recovery code works once.
    let (s, body) = mfa(json!({ "challenge": challenge, "recovery_code": recovery[0] })).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = mfa(json!({ "challenge": challenge, "recovery_code": recovery[0] })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_mfa_code");
    // Written in capitals with spaces it is still the same code.
    let spaced = recovery[1].to_uppercase().replace('-', " ");
    let (s, body) = mfa(json!({ "challenge": challenge, "recovery_code": spaced })).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // A forged or expired challenge is refused.
    let (s, _) = mfa(json!({ "challenge": "x.y", "recovery_code": recovery[2] })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.clock.advance(Duration::minutes(6));
    let (s, body) = mfa(json!({ "challenge": challenge, "recovery_code": recovery[2] })).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_mfa_code");
    let (s, _) = mfa(json!({ "challenge": challenge })).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "neither a code nor a recovery code"
    );
}

on_both!(turning_two_factor_off_needs_a_code);
async fn turning_two_factor_off_needs_a_code(backend: Backend) {
    // Arrange
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let u = register(&app, "gus@example.com").await;
    let (secret, _) = enrol(&app, &u.access).await;
    app.clock.advance(Duration::seconds(60));

    // Act and assert: a wrong code keeps it on.
    let (s, body) = call(
        &app,
        Method::DELETE,
        "/v1/me/mfa/totp",
        &u.access,
        Some(json!({ "code": "123456" })),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(me(&app, &u.access).await["mfa_enabled"], true);
    let code = code_at(&secret, app.clock_now());
    let (s, body) = call(
        &app,
        Method::DELETE,
        "/v1/me/mfa/totp",
        &u.access,
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(me(&app, &u.access).await["mfa_enabled"], false);
    let (s, body) = login(&app, "gus@example.com").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = call(
        &app,
        Method::DELETE,
        "/v1/me/mfa/totp",
        &u.access,
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "mfa_not_enabled");
}

on_both!(support_sees_account_security_and_helps_a_locked_out_user);
async fn support_sees_account_security_and_helps_a_locked_out_user(backend: Backend) {
    // Arrange: a user with two-factor on, who lost their phone.
    let sink = MailSink::start();
    let Some(app) = spawn_with_mail(backend, &sink).await else {
        return;
    };
    let u = register(&app, "hal@example.com").await;
    enrol(&app, &u.access).await;
    let support = staff_token(&app, "support@staff.test", tollgate::domain::Role::Support).await;
    let finance = staff_token(&app, "finance@staff.test", tollgate::domain::Role::Finance).await;
    let detail_path = format!("/v1/admin/users/{}", u.user_id);
    app.engine.deliver_due_mail().await.unwrap();

    // The detail shows verification state, two-factor state and the mail sent, without bodies.
    let (s, d) = call(&app, Method::GET, &detail_path, &support, None).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["email_verified_at"], Value::Null);
    assert_eq!(d["mfa_enabled"], true);
    assert_eq!(d["recovery_codes_left"], 10);
    let mail = d["recent_mail"].as_array().unwrap();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0]["template"], "verify_email");
    assert_eq!(mail[0]["status"], "sent");
    assert!(mail[0].get("body_text").is_none() && !d.to_string().contains("token="));

    // Finance may look but not act.
    let resend = format!("{detail_path}/verification/resend");
    let reset = format!("{detail_path}/mfa/reset");
    let (s, _) = call(&app, Method::POST, &resend, &finance, Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        Method::POST,
        &reset,
        &finance,
        Some(json!({ "reason": "x" })),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Act: support resends verification, and resets two-factor (a reason is required).
    let (s, body) = call(
        &app,
        Method::POST,
        &resend,
        &support,
        Some(json!({ "reason": "asked by chat" })),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["template"], "verify_email");
    let (s, body) = call(
        &app,
        Method::POST,
        &reset,
        &support,
        Some(json!({ "reason": " " })),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = call(
        &app,
        Method::POST,
        &reset,
        &support,
        Some(json!({ "reason": "identity checked by video call" })),
    )
    .await;

    // Assert
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["was_enabled"], true);
    let (s, body) = login(&app, "hal@example.com").await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the password alone signs in again: {body}"
    );
    let received = mail_for(&app, &sink, "hal@example.com").await;
    assert_eq!(received.len(), 3);
    assert!(received[2]
        .decoded()
        .contains("Two-factor authentication was turned off"));
    let token = received[1].token("/verify-email");
    let (s, _) = post(&app, "/v1/auth/verify-email", json!({ "token": token })).await;
    assert_eq!(s, StatusCode::OK);
    let (_, d) = call(&app, Method::GET, &detail_path, &support, None).await;
    assert!(d["email_verified_at"].is_string());
    assert_eq!(d["mfa_enabled"], false);
    assert_eq!(d["recovery_codes_left"], 0);
    assert_eq!(d["recent_mail"].as_array().unwrap().len(), 3);
    let audited: Vec<&str> = d["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(audited.contains(&"user.resend_verification"), "{audited:?}");
    assert!(audited.contains(&"user.reset_two_factor"), "{audited:?}");
    let reset_row = d["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.reset_two_factor")
        .unwrap();
    assert_eq!(reset_row["reason"], "identity checked by video call");
    assert_eq!(reset_row["before"]["mfa_enabled"], true);
    // Verified now: nothing to resend.
    let (s, body) = call(&app, Method::POST, &resend, &support, None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "email_already_verified");
}
