//! The back office's Stripe events: listing with filters, import of an events file as pending,
//! a dry run that changes nothing and reports each user's state before and after, and a real
//! replay with the same result (audited; finance is refused).

use crate::helpers::{call, register, staff_token, story, Backend, TestApp};
use crate::on_both;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate::domain::Role;
use tollgate::store::stripe as db;

const CUSTOMER: &str = "cus_2AZbDR2B1N8qY1";

/// The upgrade story as one JSON-lines file.
fn story_lines() -> String {
    story("story-upgrade")
        .into_iter()
        .map(|b| {
            let v: Value = serde_json::from_slice(&b).unwrap();
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything a replay may write: the events' outcomes, the user's subscription, Stripe's
/// facts, the customer links and the audit log.
async fn database(app: &TestApp, user: &str) -> Value {
    let pool = app.engine.db().read();
    let events: Vec<(String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT id, status, attempts, user_id FROM stripe_events ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    let sub = tollgate::store::subscriptions::for_user(pool, user)
        .await
        .unwrap()
        .unwrap();
    let states = db::all_subscription_states(pool).await.unwrap();
    let invoices = db::invoices_of_user(pool, user, 100).await.unwrap();
    let audit = app
        .engine
        .audit_log(&Default::default())
        .await
        .unwrap()
        .len();
    json!({
        "events": events,
        "sub": [sub.plan_version_id, sub.status, sub.current_period_end, sub.stripe_subscription_id, sub.updated_at],
        "states": states.len(),
        "invoices": invoices.iter().map(|i| json!([i.invoice_id, i.status])).collect::<Vec<_>>(),
        "audit": audit,
    })
}

on_both!(imported_events_dry_run_changes_nothing_then_replay_applies_them);
async fn imported_events_dry_run_changes_nothing_then_replay_applies_them(backend: Backend) {
    // Arrange: a customer whose Stripe customer is linked, support and finance staff.
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let support = staff_token(&app, "help@staff.test", Role::Support).await;
    let finance = staff_token(&app, "money@staff.test", Role::Finance).await;
    let who = register(&app, "upgrade@example.com").await;
    sqlx::query(
        "INSERT INTO stripe_customers (customer_id, user_id, created_at) VALUES ($1, $2, 0)",
    )
    .bind(CUSTOMER)
    .bind(&who.user_id)
    .execute(app.engine.db().write())
    .await
    .unwrap();
    let free = app
        .engine
        .catalog()
        .await
        .unwrap()
        .plan("free")
        .unwrap()
        .label();

    // Act and assert: an events file is refused unless marked as unsigned local test data.
    let file = story_lines();
    let (s, refused) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/import",
        &support,
        Some(json!({"events": file, "unsigned_local_test_data": false})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["error"]["fields"][0]["code"], "signature_required",
        "{refused}"
    );
    let (s, imported) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/import",
        &support,
        Some(json!({"events": file, "unsigned_local_test_data": true, "reason": "test data"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{imported}");
    assert_eq!(imported["stored"].as_array().unwrap().len(), 5);
    // Held for a replay: upkeep's pass over pending events leaves them alone.
    assert_eq!(app.engine.apply_pending_stripe_events().await.unwrap(), 0);
    let (_, twice) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/import",
        &support,
        Some(json!({"events": file, "unsigned_local_test_data": true})),
    )
    .await;
    assert_eq!(twice["duplicates"].as_array().unwrap().len(), 5, "{twice}");
    assert!(twice["stored"].as_array().unwrap().is_empty(), "{twice}");
    let (s, garbage) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/import",
        &support,
        Some(json!({"events": "not json", "unsigned_local_test_data": true})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{garbage}");
    assert_eq!(garbage["error"]["code"], "invalid_stripe_event");
    // The output of `stripe events list`: a list object holding the events.
    let listed = json!({"object": "list", "has_more": false, "data": story("story-churn")
        .iter()
        .map(|b| serde_json::from_slice::<Value>(b).unwrap())
        .collect::<Vec<_>>()});
    let (s, from_list) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/import",
        &support,
        Some(json!({"events": listed.to_string(), "unsigned_local_test_data": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{from_list}");
    let churn_ids = from_list["stored"].as_array().unwrap().clone();
    assert!(!churn_ids.is_empty(), "{from_list}");

    // Listed as pending, filtered by status, type and customer, paged by keyset.
    let (_, pending) = call(
        &app,
        Method::GET,
        &format!("/v1/admin/stripe/events?status=pending&customer={CUSTOMER}&limit=3"),
        &finance,
        None,
    )
    .await;
    assert_eq!(pending["events"].as_array().unwrap().len(), 3, "{pending}");
    let cursor = pending["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = call(
        &app,
        Method::GET,
        &format!(
            "/v1/admin/stripe/events?status=pending&customer={CUSTOMER}&limit=3&cursor={cursor}"
        ),
        &finance,
        None,
    )
    .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 2, "{rest}");
    assert!(rest["next_cursor"].is_null());
    let (_, paid) = call(
        &app,
        Method::GET,
        &format!("/v1/admin/stripe/events?type=invoice.paid&customer={CUSTOMER}"),
        &finance,
        None,
    )
    .await;
    assert_eq!(paid["events"].as_array().unwrap().len(), 2, "{paid}");
    let (s, bad) = call(
        &app,
        Method::GET,
        "/v1/admin/stripe/events?status=done",
        &finance,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let ids: Vec<String> = imported["stored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let (_, one) = call(
        &app,
        Method::GET,
        &format!("/v1/admin/stripe/events/{}", ids[0]),
        &finance,
        None,
    )
    .await;
    let raw: Value = serde_json::from_str(one["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["id"], ids[0].as_str());

    // Finance may read but not replay, not even a dry run.
    let (s, _) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/replay",
        &finance,
        Some(json!({"ids": ids, "dry_run": true})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A dry run: the diff is reported, the database is as it was.
    let before = database(&app, &who.user_id).await;
    let (s, dry) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/replay",
        &support,
        Some(json!({"ids": ids, "dry_run": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{dry}");
    assert_eq!(
        database(&app, &who.user_id).await,
        before,
        "a dry run writes nothing"
    );
    let diff = &dry["users"][0];
    assert_eq!(diff["user_id"], who.user_id.as_str(), "{dry}");
    assert_eq!(diff["before"]["plan_version"], free.as_str(), "{dry}");
    assert_ne!(diff["after"]["plan_version"], free.as_str(), "{dry}");
    assert_eq!(diff["after"]["subscription_status"], "active", "{dry}");
    assert!(
        diff["changed"]
            .as_array()
            .unwrap()
            .contains(&json!("plan_version")),
        "{dry}"
    );
    assert_eq!(
        dry["events"].as_array().unwrap().len(),
        5,
        "each event once: {dry}"
    );
    assert!(dry["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["outcome"] == "applied"));

    // The real replay: the same diff, now kept, and audited.
    let (s, real) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/replay",
        &support,
        Some(json!({"ids": ids, "dry_run": false, "reason": "customer asked"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{real}");
    assert_eq!(
        real["users"], dry["users"],
        "the dry run foretold the replay"
    );
    let sub = tollgate::store::subscriptions::for_user(app.engine.db().read(), &who.user_id)
        .await
        .unwrap()
        .unwrap();
    let label = app
        .engine
        .plan_version(&sub.plan_version_id)
        .await
        .unwrap()
        .label();
    assert_eq!(json!(label), diff["after"]["plan_version"]);
    let (_, applied) = call(
        &app,
        Method::GET,
        &format!(
            "/v1/admin/stripe/events?status=applied&customer={}",
            who.user_id
        ),
        &finance,
        None,
    )
    .await;
    assert_eq!(applied["events"].as_array().unwrap().len(), 5, "{applied}");
    let audit = app
        .engine
        .audit_log(&tollgate::service::audit::AuditFilter {
            action: Some("stripe.replay".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);

    // Replaying again changes nothing: applying is idempotent.
    let (_, again) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/replay",
        &support,
        Some(json!({"ids": [ids[4].clone()], "dry_run": true})),
    )
    .await;
    assert!(
        again["users"][0]["changed"].as_array().unwrap().is_empty(),
        "{again}"
    );

    // An unknown event is a 404.
    let (s, _) = call(
        &app,
        Method::POST,
        "/v1/admin/stripe/events/replay",
        &support,
        Some(json!({"ids": ["evt_unknown"], "dry_run": true})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
