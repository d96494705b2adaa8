use crate::helpers::{Backend, TestApp};
use crate::on_both;

on_both!(health_checks_the_database);
async fn health_checks_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let res = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["database"], "ok");

    app.engine.db().close().await;
    let res = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
}

on_both!(unknown_route_is_404_in_the_error_shape);
async fn unknown_route_is_404_in_the_error_shape(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let res = app
        .http
        .get(app.url("/nope"))
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-request-id"], "req-123");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route_not_found");
    assert_eq!(body["error"]["request_id"], "req-123");
}

#[tokio::test]
async fn large_answers_are_compressed_when_asked() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let res = app
        .http
        .get(app.url("/openapi.json"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let plain = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert!(!plain.headers().contains_key("content-encoding"));
}

#[tokio::test]
async fn liveness_answers_without_the_database() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let res = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    // Unlike `/health`, it still answers when the database is gone; it is not readiness.
    app.engine.db().close().await;
    let res = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.http.post(app.url("/health/live")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

on_both!(ready_needs_the_database_and_every_migration);
async fn ready_needs_the_database_and_every_migration(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let res = app.http.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ok", "database": "ok", "migrations": "ok", "redis": "off"})
    );

    // A database behind this build (the newest migration not applied): not ready.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(app.engine.db().write())
    .await
    .unwrap();
    let res = app.http.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["migrations"], "pending");

    app.engine.db().close().await;
    let res = app.http.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");
    assert_eq!(body["redis"], "off");
    // Liveness is not readiness.
    let res = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
