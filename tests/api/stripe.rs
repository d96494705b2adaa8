//! Stripe billing end to end: webhooks signed as Stripe signs them (over the fixture payload
//! files' bytes), Stripe's API faked at the network boundary with wiremock.

use crate::helpers::{
    deliver, event_file, events_dir, id_of, post_webhook, register, story, stripe_signature,
    wait_tried, Backend, Registered, TestApp, WEBHOOK_SECRET,
};
use crate::on_both;
use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate::store::stripe as db;
use wiremock::matchers::{header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OLD_WEBHOOK_SECRET: &str = "whsec_test_previous";

async fn spawn(backend: Backend, stripe: &MockServer) -> Option<TestApp> {
    let base = stripe.uri();
    TestApp::spawn_with(backend, move |s| {
        s.stripe_secret_key = Some(tollgate::domain::SecretString::new("sk_test_tollgate"));
        s.stripe_webhook_secret = Some(tollgate::domain::SecretString::new(format!(
            "{OLD_WEBHOOK_SECRET},{WEBHOOK_SECRET}"
        )));
        s.stripe_api_base = base;
        s.stripe.timeout_ms = 400;
    })
    .await
}

async fn stored_events(app: &TestApp) -> Vec<db::EventRow> {
    db::list_events(app.engine.db().read(), None, None, 1000)
        .await
        .unwrap()
}

/// Matches a form-encoded request body holding `key` (with `value`, when given), however the
/// client encodes brackets and `@` (`metadata[plan]` and `metadata%5Bplan%5D` are the same).
struct FormField(String, Option<String>);

impl wiremock::Match for FormField {
    fn matches(&self, request: &wiremock::Request) -> bool {
        url::form_urlencoded::parse(&request.body)
            .any(|(k, v)| k == self.0 && self.1.as_ref().is_none_or(|want| *want == v))
    }
}

fn form_field(key: &str, value: &str) -> FormField {
    FormField(key.to_owned(), Some(value.to_owned()))
}

/// Stripe's customer and checkout endpoints answering for one customer id.
async fn mock_checkout(stripe: &MockServer, email: &str, customer: &str) {
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(form_field("email", email))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": customer, "object": "customer"})),
        )
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(form_field("customer", customer))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": format!("cs_test_{customer}"),
            "object": "checkout.session",
            "url": format!("https://checkout.stripe.com/c/pay/cs_test_{customer}")
        })))
        .mount(stripe)
        .await;
}

async fn checkout(app: &TestApp, who: &Registered, plan: &str) -> (StatusCode, Value) {
    let res = app
        .http
        .post(app.url("/v1/billing/checkout"))
        .bearer_auth(&who.access)
        .json(&json!({ "plan": plan }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// A registered user whose Stripe customer is `customer` (created through Checkout).
async fn customer_user(
    app: &TestApp,
    stripe: &MockServer,
    email: &str,
    customer: &str,
) -> Registered {
    mock_checkout(stripe, email, customer).await;
    let who = register(app, email).await;
    let (status, body) = checkout(app, &who, "pro").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    who
}

async fn row(app: &TestApp, user: &str) -> tollgate::store::subscriptions::SubscriptionRow {
    tollgate::store::subscriptions::for_user(app.engine.db().read(), user)
        .await
        .unwrap()
        .unwrap()
}

async fn plan_label(app: &TestApp, user: &str) -> String {
    let r = row(app, user).await;
    app.engine
        .plan_version(&r.plan_version_id)
        .await
        .unwrap()
        .label()
}

fn secs(t: i64) -> i64 {
    t * 1000
}

/// (currency, paid, refunded) for one user.
async fn money(app: &TestApp, user: &str) -> (i64, i64) {
    let r = db::revenue(app.engine.db().read(), Some(user))
        .await
        .unwrap();
    r.iter()
        .map(|(_, p, f)| (*p, *f))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

// ---------------------------------------------------------------------------------------------

#[test]
fn every_fixture_event_file_parses_into_a_typed_event() {
    let mut n = 0;
    for dir in [
        "single-events",
        "story-upgrade",
        "story-churn",
        "story-refund",
    ] {
        for body in story(dir) {
            let text = String::from_utf8(body.clone()).unwrap();
            let event = tollgate::stripe::event::parse(&text)
                .unwrap_or_else(|e| panic!("{dir}/{}: {e}", id_of(&body)));
            let raw: Value = serde_json::from_str(&text).unwrap();
            let fact = tollgate::stripe::event::facts(&event, &raw).unwrap();
            let handled =
                tollgate::stripe::event::HANDLED_TYPES.contains(&raw["type"].as_str().unwrap());
            assert_eq!(
                fact != tollgate::stripe::event::Fact::Ignored,
                handled,
                "{dir}/{}",
                raw["type"]
            );
            n += 1;
        }
    }
    assert_eq!(n, 26, "every fixture event file was read");
}

on_both!(webhook_signatures_are_checked_as_stripe_specifies);
async fn webhook_signatures_are_checked_as_stripe_specifies(backend: Backend) {
    let stripe = MockServer::start().await;
    let Some(app) = spawn(backend, &stripe).await else {
        return;
    };
    let body = event_file("single-events/12-payment_intent.created.json");
    let other = event_file("single-events/11-customer.deleted.json");
    let now = app.clock_now().timestamp();
    let refusals = [
        ("missing", None),
        (
            "wrong secret",
            Some(stripe_signature(&body, "whsec_someone_else", now)),
        ),
        (
            "expired",
            Some(stripe_signature(&body, WEBHOOK_SECRET, now - 301)),
        ),
        (
            "from the future",
            Some(stripe_signature(&body, WEBHOOK_SECRET, now + 301)),
        ),
        (
            "another body's",
            Some(stripe_signature(&other, WEBHOOK_SECRET, now)),
        ),
        ("no v1", Some(format!("t={now}"))),
        ("garbage", Some("v1=zz,t=abc".into())),
    ];
    for (what, sig) in refusals {
        let (status, b) = post_webhook(&app, &body, sig).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {b}");
        assert_eq!(b["error"]["code"], "invalid_signature", "{what}");
    }
    assert!(stored_events(&app).await.is_empty(), "nothing stored");

    // During a rotation the old secret still works, and any of several v1 may match.
    let (status, b) = post_webhook(
        &app,
        &body,
        Some(stripe_signature(&body, OLD_WEBHOOK_SECRET, now - 299)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["duplicate"], false);
    let both = format!(
        "{},v1={}",
        stripe_signature(&other, "whsec_someone_else", now),
        stripe_signature(&other, WEBHOOK_SECRET, now)
            .split("v1=")
            .nth(1)
            .unwrap()
    );
    let (status, _) = post_webhook(&app, &other, Some(both)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored_events(&app).await.len(), 2);

    // An unknown type is kept and acknowledged, and changes nothing.
    let e = wait_tried(&app, &id_of(&body)).await;
    assert_eq!(
        (e.status.as_str(), e.type_.as_str()),
        ("ignored", "payment_intent.created")
    );
    assert_eq!(e.payload.as_bytes(), body.as_slice(), "stored raw");
}

on_both!(each_event_type_applies_and_duplicates_change_nothing);
async fn each_event_type_applies_and_duplicates_change_nothing(backend: Backend) {
    let stripe = MockServer::start().await;
    let Some(app) = spawn(backend, &stripe).await else {
        return;
    };
    let who = customer_user(&app, &stripe, "alan@example.com", "cus_1qGqzRJTta23TX").await;
    let uid = who.user_id.as_str();
    let sub = "sub_1qYA0RTLg8Qe2ZpR1jjMvdoY";
    let single = |n: &str| event_file(&format!("single-events/{n}.json"));

    let e = deliver(&app, &single("01-checkout.session.completed")).await;
    assert_eq!(
        (e.status.as_str(), e.user_id.as_deref()),
        ("applied", Some(uid))
    );
    assert_eq!(
        plan_label(&app, uid).await,
        "pro@1",
        "paid checkout gives the plan at once"
    );

    deliver(&app, &single("02-customer.subscription.created")).await;
    let r = row(&app, uid).await;
    assert_eq!(
        (
            r.status.as_str(),
            r.stripe_subscription_id.as_deref(),
            r.current_period_start,
            r.current_period_end
        ),
        ("active", Some(sub), secs(1787577600), secs(1790256000))
    );
    assert_eq!(r.stripe_customer_id.as_deref(), Some("cus_1qGqzRJTta23TX"));

    deliver(&app, &single("03-invoice.paid")).await;
    deliver(&app, &single("04-invoice.payment_succeeded")).await;
    assert_eq!(
        money(&app, uid).await,
        (1200, 0),
        "invoice.paid + payment_succeeded count once"
    );
    let inv = db::invoices_of_user(app.engine.db().read(), uid, 10)
        .await
        .unwrap();
    assert_eq!(inv.len(), 1);
    assert_eq!(
        (
            inv[0].plan_id.as_deref(),
            inv[0].currency.as_str(),
            inv[0].subscription_id.as_deref()
        ),
        (Some("pro"), "usd", Some(sub))
    );

    deliver(
        &app,
        &single("05-customer.subscription.updated-plan-change"),
    )
    .await;
    assert_eq!(plan_label(&app, uid).await, "business@1");

    deliver(&app, &single("06-invoice.payment_failed")).await;
    let r = row(&app, uid).await;
    assert_eq!(
        r.status, "past_due",
        "a failed payment makes the subscription past due"
    );
    // Grace runs from the failed invoice: 2026-09-24T00:00Z + 7 days.
    assert_eq!(r.grace_until, Some(secs(1790256000) + 7 * 86_400_000));
    deliver(&app, &single("07-customer.subscription.updated-past-due")).await;
    let r = row(&app, uid).await;
    assert_eq!(
        (r.status.as_str(), r.current_period_start),
        ("past_due", secs(1790256000))
    );

    deliver(
        &app,
        &single("08-customer.subscription.updated-cancel-at-period-end"),
    )
    .await;
    let r = row(&app, uid).await;
    assert_eq!(
        (r.status.as_str(), r.cancel_at_period_end, r.grace_until),
        ("active", 1, None)
    );

    deliver(&app, &single("09-customer.subscription.deleted")).await;
    let r = row(&app, uid).await;
    assert_eq!(plan_label(&app, uid).await, "free@1", "back to free");
    assert_eq!(
        (
            r.status.as_str(),
            r.stripe_subscription_id.as_deref(),
            r.current_period_start
        ),
        ("active", None, secs(1792848000))
    );
    let state = db::all_subscription_states(app.engine.db().read())
        .await
        .unwrap();
    assert_eq!(
        (state[0].status.as_str(), state[0].deleted),
        ("canceled", 1)
    );

    deliver(&app, &single("10-charge.refunded")).await;
    assert_eq!(money(&app, uid).await, (1200, 1200));

    deliver(&app, &single("11-customer.deleted")).await;
    assert_eq!(row(&app, uid).await.stripe_customer_id, None);
    let status: Value = app
        .http
        .get(app.url("/v1/billing/status"))
        .bearer_auth(&who.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["has_billing_account"], false);
    assert_eq!(status["subscription"]["effective_plan"], "free@1");
    // Newest first: the failed renewal, then the paid first invoice.
    assert_eq!(status["invoices"][0]["status"], "open");
    assert_eq!(status["invoices"][1]["amount_paid"], 1200);
    assert_eq!(status["refunds"][0]["amount_refunded"], 1200);

    let before = row(&app, uid).await;
    let e = deliver(&app, &single("12-payment_intent.created")).await;
    assert_eq!(e.status, "ignored");

    // Redelivering any event is acknowledged as a duplicate and changes nothing.
    let count = stored_events(&app).await.len();
    for n in [
        "03-invoice.paid",
        "05-customer.subscription.updated-plan-change",
        "10-charge.refunded",
    ] {
        let body = single(n);
        let t = app.clock_now().timestamp();
        let (status, b) = post_webhook(
            &app,
            &body,
            Some(stripe_signature(&body, WEBHOOK_SECRET, t)),
        )
        .await;
        assert_eq!(
            (status, b["duplicate"].as_bool()),
            (StatusCode::OK, Some(true)),
            "{n}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(stored_events(&app).await.len(), count);
    assert_eq!(money(&app, uid).await, (1200, 1200));
    assert_eq!(row(&app, uid).await, before);
}

/// Everything that order must not change: the user rows, Stripe's subscription states,
/// invoices and refunds (times of writing left out).
async fn snapshot(app: &TestApp, users: &[&str]) -> Value {
    let mut out = Vec::new();
    for u in users {
        let r = row(app, u).await;
        out.push(json!({
            "plan": plan_label(app, u).await, "status": r.status, "start": r.current_period_start,
            "end": r.current_period_end, "cancel": r.cancel_at_period_end, "grace": r.grace_until,
            "customer": r.stripe_customer_id, "sub": r.stripe_subscription_id,
            "money": money(app, u).await,
            "invoices": db::invoices_of_user(app.engine.db().read(), u, 100).await.unwrap().iter()
                .map(|i| json!([i.invoice_id, i.status, i.amount_paid, i.paid_at, i.period_start])).collect::<Vec<_>>(),
            "refunds": db::refunds_of_user(app.engine.db().read(), u).await.unwrap().iter()
                .map(|r| json!([r.charge_id, r.amount_refunded])).collect::<Vec<_>>(),
        }));
    }
    for s in db::all_subscription_states(app.engine.db().read())
        .await
        .unwrap()
    {
        out.push(json!([
            s.subscription_id,
            s.status,
            s.price_id,
            s.current_period_start,
            s.current_period_end,
            s.cancel_at_period_end,
            s.deleted,
            s.state_at,
            s.state_event
        ]));
    }
    Value::Array(out)
}

on_both!(any_delivery_order_reaches_the_same_final_state);
async fn any_delivery_order_reaches_the_same_final_state(backend: Backend) {
    let mut events: Vec<Vec<u8>> = Vec::new();
    for s in [
        "story-upgrade",
        "story-churn",
        "story-refund",
        "single-events",
    ] {
        events.extend(story(s));
    }
    let forward = events.clone();
    let mut reverse = events.clone();
    reverse.reverse();
    // A fixed shuffle (Fisher-Yates over a small LCG), so a failure can be reproduced.
    let mut shuffled = events.clone();
    let mut seed: u64 = 0x005e_ed0f_7011_6a7e;
    for i in (1..shuffled.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        shuffled.swap(i, (seed >> 33) as usize % (i + 1));
    }
    let customers = [
        ("ada@example.com", "cus_2AZbDR2B1N8qY1"),
        ("churn@example.com", "cus_0iLXh7Zv4CBCCP"),
        ("refund@example.com", "cus_rMbriFwt9BX6bN"),
        ("alan@example.com", "cus_1qGqzRJTta23TX"),
    ];
    let mut finals = Vec::new();
    for order in [forward, reverse, shuffled] {
        let stripe = MockServer::start().await;
        let Some(app) = spawn(backend, &stripe).await else {
            return;
        };
        let mut users = Vec::new();
        for (email, cus) in customers {
            users.push(customer_user(&app, &stripe, email, cus).await.user_id);
        }
        for body in &order {
            let e = deliver(&app, body).await;
            assert!(
                matches!(e.status.as_str(), "applied" | "ignored"),
                "{}: {:?}",
                e.id,
                e.error
            );
        }
        let names: Vec<&str> = users.iter().map(String::as_str).collect();
        // The README's expected finals, per story.
        assert_eq!(plan_label(&app, names[0]).await, "business@1");
        assert_eq!(
            row(&app, names[0]).await.current_period_end,
            secs(1791036000)
        );
        assert_eq!(money(&app, names[0]).await, (2550, 0));
        assert_eq!(plan_label(&app, names[1]).await, "free@1", "churned");
        assert_eq!(money(&app, names[1]).await, (1200, 0));
        let refunded = row(&app, names[2]).await;
        assert_eq!(
            (refunded.status.as_str(), refunded.current_period_end),
            ("active", secs(1791996300))
        );
        assert_eq!(money(&app, names[2]).await, (1200, 1200));
        let mut snap = snapshot(&app, &names).await;
        // User ids differ between runs; everything else must not.
        for (i, u) in names.iter().enumerate() {
            snap = serde_json::from_str(&snap.to_string().replace(u, &format!("user{i}"))).unwrap();
        }
        finals.push(snap);
    }
    assert_eq!(finals[0], finals[1], "reverse order");
    assert_eq!(finals[0], finals[2], "shuffled order");
}

on_both!(events_for_an_unknown_customer_wait_until_it_appears);
async fn events_for_an_unknown_customer_wait_until_it_appears(backend: Backend) {
    let stripe = MockServer::start().await;
    let Some(app) = spawn(backend, &stripe).await else {
        return;
    };
    for body in story("story-refund") {
        let e = deliver(&app, &body).await;
        assert_eq!(e.status, "pending", "{}", e.id);
        assert!(e.error.unwrap().contains("cus_rMbriFwt9BX6bN"));
    }
    // The customer appears when its user goes through Checkout.
    let who = customer_user(&app, &stripe, "late@example.com", "cus_rMbriFwt9BX6bN").await;
    for _ in 0..200 {
        if db::list_events(app.engine.db().read(), None, Some("pending"), 10)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let statuses: Vec<String> = stored_events(&app)
        .await
        .into_iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, ["applied"; 4]);
    assert_eq!(plan_label(&app, &who.user_id).await, "pro@1");
    assert_eq!(money(&app, &who.user_id).await, (1200, 1200));
}

on_both!(events_stored_before_a_crash_are_applied_on_restart);
async fn events_stored_before_a_crash_are_applied_on_restart(backend: Backend) {
    let stripe = MockServer::start().await;
    let Some(app) = spawn(backend, &stripe).await else {
        return;
    };
    let who = customer_user(&app, &stripe, "ada@example.com", "cus_2AZbDR2B1N8qY1").await;
    // As the webhook leaves them when the process dies right after storing: pending, untried.
    let pool = app.engine.db().write();
    for body in story("story-upgrade") {
        let v: Value = serde_json::from_slice(&body).unwrap();
        sqlx::query(
            "INSERT INTO stripe_events (id, type, created, livemode, payload, received_at, status, customer_id, attempts)
             VALUES ($1, $2, $3, 0, $4, 0, 'pending', $5, 0)",
        )
        .bind(v["id"].as_str().unwrap())
        .bind(v["type"].as_str().unwrap())
        .bind(v["created"].as_i64().unwrap() * 1000)
        .bind(String::from_utf8(body.clone()).unwrap())
        .bind(v["data"]["object"]["customer"].as_str().unwrap())
        .execute(pool)
        .await
        .unwrap();
    }
    // A restarted server runs its upkeep, which applies them in `created` order.
    let upkeep = app.engine.spawn_upkeep();
    for _ in 0..200 {
        if plan_label(&app, &who.user_id).await == "business@1"
            && money(&app, &who.user_id).await.0 == 2550
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    upkeep.abort();
    assert_eq!(plan_label(&app, &who.user_id).await, "business@1");
    assert_eq!(money(&app, &who.user_id).await, (2550, 0));
    assert!(stored_events(&app)
        .await
        .iter()
        .all(|e| e.status == "applied"));
}

on_both!(checkout_and_portal_with_stripe_failures_leave_nothing_half_written);
async fn checkout_and_portal_with_stripe_failures_leave_nothing_half_written(backend: Backend) {
    let stripe = MockServer::start().await;
    let Some(app) = spawn(backend, &stripe).await else {
        return;
    };
    let who = register(&app, "buyer@example.com").await;
    let customers = || async {
        let mut conn = app.engine.db().read().acquire().await.unwrap();
        db::customers_of_user(&mut conn, &who.user_id)
            .await
            .unwrap()
    };

    // Refused before any Stripe call.
    let (status, b) = checkout(&app, &who, "free").await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("plan_is_free"))
    );
    let (status, b) = checkout(&app, &who, "platinum").await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_plan"))
    );
    assert!(stripe.received_requests().await.unwrap().is_empty());
    let portal = app
        .http
        .post(app.url("/v1/billing/portal"))
        .bearer_auth(&who.access)
        .send()
        .await
        .unwrap();
    assert_eq!(portal.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        portal.json::<Value>().await.unwrap()["error"]["code"],
        "no_billing_account"
    );

    // Stripe down (500), then slow (timeout): 502, nothing stored.
    let down = Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"type": "api_error", "message": "boom"}})),
        )
        .expect(1)
        .mount_as_scoped(&stripe)
        .await;
    let (status, b) = checkout(&app, &who, "pro").await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("stripe_unavailable"))
    );
    drop(down);
    let slow = Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cus_slow"}))
                .set_delay(std::time::Duration::from_secs(2)),
        )
        .mount_as_scoped(&stripe)
        .await;
    let (status, b) = checkout(&app, &who, "pro").await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("stripe_unavailable"))
    );
    drop(slow);
    assert!(customers().await.is_empty());

    // The customer is created but Checkout refuses: Stripe's code comes back, no customer kept.
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header_exists("Idempotency-Key"))
        .and(FormField("metadata[user_id]".into(), None))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cus_buyer", "object": "customer"})),
        )
        .mount(&stripe)
        .await;
    let refused = Mock::given(method("POST")).and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "resource_missing", "type": "invalid_request_error", "message": "No such price: 'price_pro_monthly'"}})))
        .mount_as_scoped(&stripe).await;
    let (status, b) = checkout(&app, &who, "pro").await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("stripe_error"))
    );
    assert_eq!(b["error"]["stripe_code"], "resource_missing");
    assert_eq!(b["error"]["stripe_type"], "invalid_request_error");
    drop(refused);
    assert!(customers().await.is_empty());
    assert_eq!(row(&app, &who.user_id).await.stripe_customer_id, None);

    // Success: the session is for the plan's price, with the user and plan in its metadata.
    Mock::given(method("POST")).and(path("/v1/checkout/sessions"))
        .and(form_field("mode", "subscription"))
        .and(form_field("customer", "cus_buyer"))
        .and(form_field("line_items[0][price]", "price_pro_monthly"))
        .and(form_field("metadata[plan]", "pro"))
        .and(form_field("client_reference_id", &who.user_id))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_ok", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_ok"})))
        .mount(&stripe).await;
    let (status, b) = checkout(&app, &who, "pro").await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(
        b,
        json!({"checkout_url": "https://checkout.stripe.com/c/pay/cs_test_ok", "session_id": "cs_test_ok"})
    );
    assert_eq!(customers().await.len(), 1);
    assert_eq!(
        row(&app, &who.user_id).await.stripe_customer_id.as_deref(),
        Some("cus_buyer")
    );
    // Every customer creation for this user used the same idempotency key, so Stripe made one.
    let keys: std::collections::HashSet<String> = stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/customers")
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let auth: Vec<String> = stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(auth.iter().all(|a| a == "Bearer sk_test_tollgate"));

    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .and(form_field("customer", "cus_buyer"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "bps_1", "url": "https://billing.stripe.com/p/session/bps_1"}),
        ))
        .mount(&stripe)
        .await;
    let portal: Value = app
        .http
        .post(app.url("/v1/billing/portal"))
        .bearer_auth(&who.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        portal["portal_url"],
        "https://billing.stripe.com/p/session/bps_1"
    );
}

on_both!(billing_routes_answer_503_without_stripe_keys);
async fn billing_routes_answer_503_without_stripe_keys(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let who = register(&app, "nokeys@example.com").await;
    let (status, b) = checkout(&app, &who, "pro").await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("stripe_not_configured")
        )
    );
    let body = event_file("single-events/12-payment_intent.created.json");
    let (status, _) = post_webhook(
        &app,
        &body,
        Some(stripe_signature(
            &body,
            WEBHOOK_SECRET,
            app.clock_now().timestamp(),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(stored_events(&app).await.is_empty());
}

/// A fixture event with some fields changed (for periods the fixture files do not cover).
fn variant(rel: &str, edits: &[(&str, Value)]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&event_file(rel)).unwrap();
    for (pointer, value) in edits {
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = value.clone();
    }
    serde_json::to_vec_pretty(&v).unwrap()
}

const CREDIT_CATALOG: &str = r#"
metrics = ["generations"]
default_plan = "free"
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { generations = { credits = 5, per = "billing_period" } }
rate_limits = { api = { requests = 1000, window = "1h" } }
[[plans]]
id = "pro"
price = { amount = 1200, interval = "month" }
stripe_price_ids = ["price_pro_monthly"]
quotas = { generations = { credits = 100, per = "billing_period" } }
rate_limits = { api = { requests = 1000, window = "1h" } }
"#;

on_both!(life_cycle_checkout_paid_failed_grace_deleted_free);
async fn life_cycle_checkout_paid_failed_grace_deleted_free(backend: Backend) {
    let stripe = MockServer::start().await;
    let Some(app) = spawn(backend, &stripe).await else {
        return;
    };
    app.engine
        .apply_catalog(CREDIT_CATALOG, Some("test"))
        .await
        .unwrap();
    let catalog = app.engine.catalog().await.unwrap();
    let (pro, free) = (
        catalog.plan("pro").unwrap().label(),
        catalog.plan("free").unwrap().label(),
    );
    let at = |s: i64| Utc.timestamp_opt(s, 0).unwrap();
    app.clock.set(at(1787577000)); // 2026-08-24, just before checkout
    let who = customer_user(&app, &stripe, "life@example.com", "cus_1qGqzRJTta23TX").await;
    let uid = UserIdOf(&who.user_id);
    let credits =
        || async { app.engine.usage_summary(&uid.id()).await.unwrap().credits["generations"] };
    let effective = || async {
        app.engine
            .subscription(&uid.id())
            .await
            .unwrap()
            .effective_plan
    };
    assert_eq!(credits().await, 5, "free credits");

    let step = |t: i64| app.clock.set(at(t));
    step(1787577604);
    deliver(
        &app,
        &event_file("single-events/01-checkout.session.completed.json"),
    )
    .await;
    deliver(
        &app,
        &event_file("single-events/02-customer.subscription.created.json"),
    )
    .await;
    deliver(&app, &event_file("single-events/03-invoice.paid.json")).await;
    assert_eq!(
        (effective().await.as_str(), credits().await),
        (pro.as_str(), 100),
        "paid: pro credits"
    );
    app.engine
        .check_and_consume(
            &uid.id(),
            tollgate::service::metering::MeterRequest {
                metric: "generations",
                amount: 30,
                idempotency_key: None,
                request_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(credits().await, 70);

    // The renewal is paid: a new period starts from the invoice alone, with fresh credits.
    let (p2, p3, p4) = (1790256000, 1792848000, 1795526400);
    step(p2 + 6);
    deliver(
        &app,
        &variant(
            "single-events/03-invoice.paid.json",
            &[
                ("/id", json!("evt_test_renewal_paid")),
                ("/created", json!(p2 + 6)),
                ("/data/object/id", json!("in_test_renewal")),
                ("/data/object/billing_reason", json!("subscription_cycle")),
                ("/data/object/created", json!(p2)),
                ("/data/object/status_transitions/paid_at", json!(p2 + 2)),
                (
                    "/data/object/lines/data/0/period",
                    json!({"start": p2, "end": p3}),
                ),
            ],
        ),
    )
    .await;
    let r = row(&app, uid.0).await;
    assert_eq!(
        (r.current_period_start, r.current_period_end),
        (secs(p2), secs(p3))
    );
    assert_eq!(credits().await, 100, "the new period's credits");
    assert_eq!(money(&app, uid.0).await, (2400, 0));

    // The next renewal fails: past due, with a grace period before limits drop to free.
    step(p3 + 3607);
    deliver(
        &app,
        &variant(
            "single-events/06-invoice.payment_failed.json",
            &[
                ("/id", json!("evt_test_renewal_failed")),
                ("/created", json!(p3 + 3607)),
                ("/data/object/id", json!("in_test_failed")),
                ("/data/object/created", json!(p3)),
                (
                    "/data/object/lines/data/0/period",
                    json!({"start": p3, "end": p4}),
                ),
                (
                    "/data/object/lines/data/0/pricing/price_details/price",
                    json!("price_pro_monthly"),
                ),
            ],
        ),
    )
    .await;
    let r = row(&app, uid.0).await;
    assert_eq!(
        (r.status.as_str(), r.grace_until),
        ("past_due", Some(secs(p3) + 7 * 86_400_000))
    );
    assert_eq!(effective().await, pro.as_str(), "within grace");
    step(p3 + 7 * 86_400 + 60);
    assert_eq!(effective().await, free.as_str(), "grace is over");
    assert_eq!(
        money(&app, uid.0).await,
        (2400, 0),
        "a failed payment is no revenue"
    );

    // Stripe gives up and deletes the subscription: free for good, from when it ended.
    let ended = p3 + 8 * 86_400;
    step(ended + 4);
    deliver(
        &app,
        &variant(
            "single-events/09-customer.subscription.deleted.json",
            &[
                ("/id", json!("evt_test_deleted")),
                ("/created", json!(ended + 4)),
                ("/data/object/ended_at", json!(ended)),
                ("/data/object/status", json!("canceled")),
                (
                    "/data/object/items/data/0/price/id",
                    json!("price_pro_monthly"),
                ),
                ("/data/object/items/data/0/current_period_start", json!(p3)),
                ("/data/object/items/data/0/current_period_end", json!(p4)),
            ],
        ),
    )
    .await;
    let r = row(&app, uid.0).await;
    assert_eq!(
        (
            plan_label(&app, uid.0).await.as_str(),
            r.status.as_str(),
            r.current_period_start
        ),
        (free.as_str(), "active", secs(ended))
    );
    assert_eq!(effective().await, free.as_str());
    assert_eq!(credits().await, 5, "free credits again");
}

struct UserIdOf<'a>(&'a str);
impl UserIdOf<'_> {
    fn id(&self) -> tollgate::domain::UserId {
        tollgate::domain::UserId::parse(self.0).unwrap()
    }
}

on_both!(reconcile_reports_then_resyncs_from_stripe_pages);
async fn reconcile_reports_then_resyncs_from_stripe_pages(backend: Backend) {
    let stripe = MockServer::start().await;
    let Some(app) = spawn(backend, &stripe).await else {
        return;
    };
    let who = customer_user(&app, &stripe, "ada@example.com", "cus_2AZbDR2B1N8qY1").await;
    let upgrade = story("story-upgrade");
    for body in &upgrade[..3] {
        deliver(&app, body).await;
    }
    assert_eq!(plan_label(&app, &who.user_id).await, "pro@1");
    let object =
        |body: &[u8]| serde_json::from_slice::<Value>(body).unwrap()["data"]["object"].clone();
    // Page 1: the upgraded subscription (Tollgate missed the update); page 2: a stranger's.
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param("status", "all"))
        .and(wiremock::matchers::query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": true, "data": [object(&upgrade[3])]})))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions"))
        .and(query_param(
            "starting_after",
            "sub_10wOdNTLg8Qe2ZpRH9pElm1h",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false,
            "data": [object(&event_file("story-churn/05-customer.subscription.deleted.json"))]})))
        .mount(&stripe)
        .await;
    Mock::given(method("GET")).and(path("/v1/invoices"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false, "data": [object(&upgrade[2]), object(&upgrade[4])]})))
        .mount(&stripe).await;

    let report = app
        .engine
        .reconcile_stripe(false, 90, "test")
        .await
        .unwrap();
    assert_eq!(
        (report.subscriptions_checked, report.invoices_checked),
        (2, 2)
    );
    let targets: Vec<(&str, bool)> = report
        .mismatches
        .iter()
        .map(|m| (m.target.as_str(), m.fixed))
        .collect();
    assert_eq!(
        targets,
        [
            ("sub_10wOdNTLg8Qe2ZpRH9pElm1h", false),
            ("sub_1dJurvTLg8Qe2ZpR7EOnQgVK", false),
            ("in_1fYhxaTLg8Qe2ZpRT91l3V4v", false),
        ],
        "{:#?}",
        report.mismatches
    );
    assert!(report.mismatches[0]
        .what
        .contains("price_pro_monthly (Stripe: price_business_monthly)"));
    assert_eq!(
        plan_label(&app, &who.user_id).await,
        "pro@1",
        "a report changes nothing"
    );

    let report = app.engine.reconcile_stripe(true, 90, "test").await.unwrap();
    let fixed: Vec<bool> = report.mismatches.iter().map(|m| m.fixed).collect();
    assert_eq!(
        fixed,
        [true, false, true],
        "a stranger's subscription cannot be resynced"
    );
    assert_eq!(plan_label(&app, &who.user_id).await, "business@1");
    assert_eq!(money(&app, &who.user_id).await, (2550, 0));
    let audited = tollgate::store::audit::list(
        app.engine.db().read(),
        Some("test"),
        None,
        Some("stripe.reconcile"),
        None,
        10,
    )
    .await
    .unwrap();
    assert_eq!(audited.len(), 2);
    // Once in sync, only the stranger remains.
    let report = app
        .engine
        .reconcile_stripe(false, 90, "test")
        .await
        .unwrap();
    assert_eq!(report.mismatches.len(), 1, "{:#?}", report.mismatches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_cli_dry_run_writes_nothing_then_applies_once() {
    let stripe = MockServer::start().await;
    let app = spawn(Backend::Sqlite, &stripe).await.unwrap();
    let who = customer_user(&app, &stripe, "ada@example.com", "cus_2AZbDR2B1N8qY1").await;
    let dir = events_dir().join("story-upgrade");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("TOLLGATE_DATABASE_URL", &app.db.url)
            .env("TOLLGATE_LOG", "warn")
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();

    let dry = cli(&["stripe", "replay", dir.to_str().unwrap(), "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let out = text(&dry);
    assert!(
        out.contains("[1/5] evt_1NPL3MTLg8Qe2ZpRtEi42kCy checkout.session.completed applied"),
        "{out}"
    );
    assert!(out.contains("plan pro@1 → business@1"), "{out}");
    assert!(
        out.contains("dry run, nothing written: 5 event(s): 5 applied"),
        "{out}"
    );
    assert!(
        stored_events(&app).await.is_empty(),
        "a dry run stores nothing"
    );
    assert_eq!(plan_label(&app, &who.user_id).await, "free@1");

    let real = cli(&["stripe", "replay", dir.to_str().unwrap()]);
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert!(
        text(&real).contains("5 event(s): 5 applied"),
        "{}",
        text(&real)
    );
    assert_eq!(plan_label(&app, &who.user_id).await, "business@1");

    let listed = cli(&["stripe", "events", "list", "--json"]);
    let export = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(export.path(), &listed.stdout).unwrap();
    let again = cli(&["stripe", "replay", export.path().to_str().unwrap()]);
    assert!(
        text(&again)
            .contains("5 event(s): 0 applied, 0 ignored, 0 pending, 0 failed, 5 already applied"),
        "{}",
        text(&again)
    );

    let list = text(&cli(&[
        "stripe",
        "events",
        "list",
        "--type",
        "invoice.paid",
        "--status",
        "applied",
    ]));
    assert_eq!(list.lines().count(), 2, "{list}");
    let shown: Value = serde_json::from_slice(
        &cli(&["stripe", "events", "show", "evt_1jN1rLTLg8Qe2ZpRapFnMRmY"]).stdout,
    )
    .unwrap();
    assert_eq!(
        (shown["status"].as_str(), shown["payload"]["type"].as_str()),
        (Some("applied"), Some("invoice.paid"))
    );

    let missing = cli(&["stripe", "replay", "/nonexistent/events"]);
    assert!(!missing.status.success());
    let not_events = cli(&[
        "stripe",
        "replay",
        events_dir().join("catalog.json").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&not_events.stderr).contains("not a Stripe event"));
}
