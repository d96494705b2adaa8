//! Revenue for finance through HTTP and the CLI: every figure on a hand-built history whose
//! answers are worked out below, the same figures from real signed Stripe webhooks, CSV
//! export, permissions and bad queries. Definitions: docs/revenue.md.

use crate::helpers::{
    deliver, register, send, staff_token, story, Backend, TestApp, WEBHOOK_SECRET,
};
use crate::on_both;
use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tollgate::domain::{Role, UserId};
use tollgate::store::stripe::{self as db, InvoiceRow, RefundRow, SubscriptionState};

/// Unix ms of a UTC day at midnight.
fn t(y: i32, m: u32, d: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
}

/// GET as `token`: status, content type and body (JSON when it parses, else the text).
async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, String, Value) {
    let (status, headers, body) = send(app, Method::GET, path, Some(token), None).await;
    let ctype = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, body)
}

async fn rows(app: &TestApp, table: &str, months: i64, token: &str) -> Vec<Value> {
    let (status, _, body) = get(
        app,
        &format!("/v1/admin/revenue/{table}?months={months}"),
        token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{table}: {body}");
    body["rows"].as_array().unwrap().clone()
}

/// The integer fields of a row, for compact comparisons.
fn ints(row: &Value, fields: &[&str]) -> Vec<i64> {
    fields
        .iter()
        .map(|f| row[*f].as_i64().unwrap_or_else(|| panic!("{f} in {row}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The hand-built history

/// One paid invoice: `period` is None for a mid-period change (a proration invoice).
struct Paid {
    id: &'static str,
    user: &'static str,
    sub: &'static str,
    price: &'static str,
    plan: &'static str,
    amount: i64,
    period: Option<(i64, i64)>,
    reason: &'static str,
    at: i64,
}

// One row of the history table per call reads better than a struct literal each.
#[allow(clippy::too_many_arguments)]
fn paid(
    id: &'static str,
    user: &'static str,
    sub: &'static str,
    price: &'static str,
    amount: i64,
    period: Option<(i64, i64)>,
    reason: &'static str,
    at: i64,
) -> Paid {
    let plan = if price.starts_with("price_pro") {
        "pro"
    } else {
        "business"
    };
    Paid {
        id,
        user,
        sub,
        price,
        plan,
        amount,
        period,
        reason,
        at,
    }
}

/// A subscription that ended at `ended` (what customer.subscription.deleted leaves).
fn ended(sub: &str, user: &str, started: i64, ended: i64) -> SubscriptionState {
    SubscriptionState {
        subscription_id: sub.into(),
        customer_id: format!("cus_{user}"),
        user_id: UserId::parse(user).unwrap(),
        price_id: Some("price_pro_monthly".into()),
        status: "canceled".into(),
        current_period_start: started,
        current_period_end: ended,
        cancel_at_period_end: 1,
        trial_end: None,
        ended_at: Some(ended),
        started_at: started,
        deleted: 1,
        state_at: ended,
        state_event: format!("evt_{sub}"),
        updated_at: ended,
    }
}

/// Six customers, all in USD, written as the webhook applier writes Stripe's facts.
///
/// - A (upgrade): Pro from Feb 10; on Mar 25 moves to Business monthly mid-period (a
///   `subscription_update` proration invoice of 1400); Business renewals from Apr 10.
/// - B (downgrade): Business monthly since Jan 5; on Apr 20 moves to Pro mid-period (the
///   proration leaves a credit, so that invoice is paid with 0, the May 5 renewal is paid
///   entirely by credit (0) and the Jun 5 renewal partly (1050)). MRR must follow the list
///   price (1200), not what the credit let through.
/// - C (churn): Pro from Mar 3, renewed Apr 3, cancelled at period end: ended May 3.
/// - D (reactivation): Pro Jan 15 → Feb 15 then ended; a new subscription from May 20.
/// - E (annual): Business annual from Apr 8, 39000 for a 365-day period → 3250 a month.
/// - F (refund): Pro from Mar 12, cancelled and refunded in full on Mar 14.
async fn write_history(app: &TestApp) {
    let pro = "price_pro_monthly";
    let biz = "price_business_monthly";
    let annual = "price_business_annual";
    let (create, cycle, update) = (
        "subscription_create",
        "subscription_cycle",
        "subscription_update",
    );
    let m = |mo: u32, d: u32| t(2026, mo, d);
    let p = |a: (u32, u32), b: (u32, u32)| Some((m(a.0, a.1), m(b.0, b.1)));
    let invoices = vec![
        paid(
            "in_a1",
            "usr_a",
            "sub_a",
            pro,
            1200,
            p((2, 10), (3, 10)),
            create,
            m(2, 10),
        ),
        paid(
            "in_a2",
            "usr_a",
            "sub_a",
            pro,
            1200,
            p((3, 10), (4, 10)),
            cycle,
            m(3, 10),
        ),
        paid("in_a3", "usr_a", "sub_a", biz, 1400, None, update, m(3, 25)),
        paid(
            "in_a4",
            "usr_a",
            "sub_a",
            biz,
            3900,
            p((4, 10), (5, 10)),
            cycle,
            m(4, 10),
        ),
        paid(
            "in_a5",
            "usr_a",
            "sub_a",
            biz,
            3900,
            p((5, 10), (6, 10)),
            cycle,
            m(5, 10),
        ),
        paid(
            "in_a6",
            "usr_a",
            "sub_a",
            biz,
            3900,
            p((6, 10), (7, 10)),
            cycle,
            m(6, 10),
        ),
        paid(
            "in_b1",
            "usr_b",
            "sub_b",
            biz,
            3900,
            p((1, 5), (2, 5)),
            create,
            m(1, 5),
        ),
        paid(
            "in_b2",
            "usr_b",
            "sub_b",
            biz,
            3900,
            p((2, 5), (3, 5)),
            cycle,
            m(2, 5),
        ),
        paid(
            "in_b3",
            "usr_b",
            "sub_b",
            biz,
            3900,
            p((3, 5), (4, 5)),
            cycle,
            m(3, 5),
        ),
        paid(
            "in_b4",
            "usr_b",
            "sub_b",
            biz,
            3900,
            p((4, 5), (5, 5)),
            cycle,
            m(4, 5),
        ),
        paid("in_b5", "usr_b", "sub_b", pro, 0, None, update, m(4, 20)),
        paid(
            "in_b6",
            "usr_b",
            "sub_b",
            pro,
            0,
            p((5, 5), (6, 5)),
            cycle,
            m(5, 5),
        ),
        paid(
            "in_b7",
            "usr_b",
            "sub_b",
            pro,
            1050,
            p((6, 5), (7, 5)),
            cycle,
            m(6, 5),
        ),
        paid(
            "in_c1",
            "usr_c",
            "sub_c",
            pro,
            1200,
            p((3, 3), (4, 3)),
            create,
            m(3, 3),
        ),
        paid(
            "in_c2",
            "usr_c",
            "sub_c",
            pro,
            1200,
            p((4, 3), (5, 3)),
            cycle,
            m(4, 3),
        ),
        paid(
            "in_d1",
            "usr_d",
            "sub_d1",
            pro,
            1200,
            p((1, 15), (2, 15)),
            create,
            m(1, 15),
        ),
        paid(
            "in_d2",
            "usr_d",
            "sub_d2",
            pro,
            1200,
            p((5, 20), (6, 20)),
            create,
            m(5, 20),
        ),
        paid(
            "in_d3",
            "usr_d",
            "sub_d2",
            pro,
            1200,
            p((6, 20), (7, 20)),
            cycle,
            m(6, 20),
        ),
        paid(
            "in_e1",
            "usr_e",
            "sub_e",
            annual,
            39_000,
            Some((m(4, 8), t(2027, 4, 8))),
            create,
            m(4, 8),
        ),
        paid(
            "in_f1",
            "usr_f",
            "sub_f",
            pro,
            1200,
            p((3, 12), (4, 12)),
            create,
            m(3, 12),
        ),
    ];
    let mut tx = app.engine.db().begin().await.unwrap();
    for i in &invoices {
        db::put_invoice(
            &mut tx,
            &InvoiceRow {
                invoice_id: i.id.into(),
                customer_id: format!("cus_{}", i.user),
                user_id: UserId::parse(i.user).unwrap(),
                subscription_id: Some(i.sub.into()),
                status: "paid".into(),
                amount_due: i.amount,
                amount_paid: i.amount,
                currency: "usd".into(),
                billing_reason: Some(i.reason.into()),
                price_id: Some(i.price.into()),
                plan_id: Some(i.plan.into()),
                period_start: i.period.map(|p| p.0),
                period_end: i.period.map(|p| p.1),
                created: i.at,
                paid_at: Some(i.at + 60_000),
                failed_at: None,
                attempt_count: 1,
                updated_at: i.at,
            },
        )
        .await
        .unwrap();
    }
    // An open (unpaid) invoice counts nowhere.
    db::put_invoice(
        &mut tx,
        &InvoiceRow {
            invoice_id: "in_open".into(),
            customer_id: "cus_usr_c".into(),
            user_id: UserId::parse("usr_c").unwrap(),
            subscription_id: Some("sub_c".into()),
            status: "open".into(),
            amount_due: 1200,
            amount_paid: 0,
            currency: "usd".into(),
            billing_reason: Some(cycle.into()),
            price_id: Some(pro.into()),
            plan_id: Some("pro".into()),
            period_start: Some(m(5, 3)),
            period_end: Some(m(6, 3)),
            created: m(5, 3),
            paid_at: None,
            failed_at: None,
            attempt_count: 1,
            updated_at: m(5, 3),
        },
    )
    .await
    .unwrap();
    for s in [
        ended("sub_c", "usr_c", m(3, 3), m(5, 3)),
        ended("sub_d1", "usr_d", m(1, 15), m(2, 15)),
        ended("sub_f", "usr_f", m(3, 12), m(3, 14)),
    ] {
        db::put_subscription_state(&mut tx, &s).await.unwrap();
    }
    db::put_refund(
        &mut tx,
        &RefundRow {
            charge_id: "ch_f1".into(),
            customer_id: "cus_usr_f".into(),
            user_id: UserId::parse("usr_f").unwrap(),
            payment_intent: None,
            amount: 1200,
            amount_refunded: 1200,
            currency: "usd".into(),
            refunded: 1,
            refunded_at: m(3, 14) + 3_600_000,
            updated_at: m(3, 14),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

on_both!(revenue_reports_follow_a_new_fact_at_once);
async fn revenue_reports_follow_a_new_fact_at_once(backend: Backend) {
    // Arrange: the history above, read once (the ledger is built and kept).
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    write_history(&app).await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 6, 25, 0, 0, 0).unwrap());
    let finance = staff_token(&app, "cfo@example.com", Role::Finance).await;
    let june = |rows: &[Value]| ints(&rows[3], &["mrr", "refunded", "net_revenue"]);
    assert_eq!(june(&rows(&app, "mrr", 4, &finance).await), [9550, 0, 6150]);
    assert_eq!(
        june(&rows(&app, "mrr", 4, &finance).await),
        [9550, 0, 6150],
        "the same answer from the kept ledger"
    );

    // Act: a refund in June arrives.
    let mut tx = app.engine.db().begin().await.unwrap();
    db::put_refund(
        &mut tx,
        &RefundRow {
            charge_id: "ch_d_june".into(),
            customer_id: "cus_usr_d".into(),
            user_id: UserId::parse("usr_d").unwrap(),
            payment_intent: None,
            amount: 1200,
            amount_refunded: 500,
            currency: "usd".into(),
            refunded: 0,
            refunded_at: Utc
                .with_ymd_and_hms(2026, 6, 10, 0, 0, 0)
                .unwrap()
                .timestamp_millis(),
            updated_at: Utc
                .with_ymd_and_hms(2026, 6, 10, 0, 0, 0)
                .unwrap()
                .timestamp_millis(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Assert: the next report counts it; MRR is unchanged.
    assert_eq!(
        june(&rows(&app, "mrr", 4, &finance).await),
        [9550, 500, 5650]
    );
}

on_both!(revenue_figures_on_a_hand_built_history);
async fn revenue_figures_on_a_hand_built_history(backend: Backend) {
    // Arrange: the history above, seen on 2026-06-25; four months: March to June.
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    write_history(&app).await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 6, 25, 0, 0, 0).unwrap());
    let finance = staff_token(&app, "cfo@example.com", Role::Finance).await;

    // Rates: Pro 1200 (its most frequent full-period charge; B's credit-paid 0 and 1050 do
    // not change it), Business monthly 3900, Business annual 39000 / 12 = 3250.
    //
    // Customer MRR at each snapshot (Mar 1 | Apr 1 | May 1 | Jun 1 | now, Jun 25):
    //   A: 1200 (Pro) | 3900 (the Mar 25 change wins over the Pro period) | 3900 | 3900 | 3900
    //   B: 3900       | 3900 | 1200 (the Apr 20 change to Pro)             | 1200 | 1200
    //   C: 0          | 1200 | 1200 | 0 (ended May 3)                       | 0
    //   D: 0          | 0    | 0    | 1200 (new subscription May 20)       | 1200
    //   E: 0          | 0    | 3250 | 3250 | 3250
    //   F: 0 everywhere: its period was cut short when it ended on Mar 14.
    //   Total: 5100   | 9000 | 9550 | 9550 | 9550

    // Act + Assert: MRR.
    let mrr = rows(&app, "mrr", 4, &finance).await;
    let fields = [
        "mrr",
        "arr",
        "paying_customers",
        "arpu",
        "collected",
        "refunded",
        "net_revenue",
    ];
    let months: Vec<&str> = mrr.iter().map(|r| r["month"].as_str().unwrap()).collect();
    assert_eq!(months, ["2026-03", "2026-04", "2026-05", "2026-06"]);
    assert!(mrr.iter().all(|r| r["currency"] == "usd"));
    assert_eq!(mrr[0]["snapshot_at"], "2026-04-01T00:00:00Z");
    assert_eq!(mrr[3]["snapshot_at"], "2026-06-25T00:00:00Z", "now");
    // March: MRR 9000 (A 3900 + B 3900 + C 1200), ARR 9000 × 12 = 108000, 3 paying,
    // ARPU 9000 / 3 = 3000. Collected (by payment time): A 1200 + A 1400 + B 3900 + C 1200
    // + F 1200 = 8900; refunded F 1200; net 8900 − 1200 = 7700.
    assert_eq!(
        ints(&mrr[0], &fields),
        [9000, 108_000, 3, 3000, 8900, 1200, 7700]
    );
    // April: 9550 (A 3900 + B 1200 + C 1200 + E 3250), ARR 114600, 4 paying, ARPU
    // 9550 / 4 = 2387.5 → 2388. Collected: C 1200 + B 3900 + E 39000 + A 3900 + B 0 = 48000.
    assert_eq!(
        ints(&mrr[1], &fields),
        [9550, 114_600, 4, 2388, 48_000, 0, 48_000]
    );
    // May: 9550 (C left, D came back). Collected: B 0 + A 3900 + D 1200 = 5100.
    assert_eq!(
        ints(&mrr[2], &fields),
        [9550, 114_600, 4, 2388, 5100, 0, 5100]
    );
    // June so far: 9550. Collected: B 1050 + A 3900 + D 1200 = 6150.
    assert_eq!(
        ints(&mrr[3], &fields),
        [9550, 114_600, 4, 2388, 6150, 0, 6150]
    );

    // Movements, month by month (start → end snapshot):
    let mv = rows(&app, "movements", 4, &finance).await;
    let fields = [
        "start_mrr",
        "new",
        "expansion",
        "contraction",
        "churned",
        "reactivation",
        "net_new",
        "end_mrr",
    ];
    // March: C new 1200; A expands 1200 → 3900 (+2700); net 3900 = 9000 − 5100.
    assert_eq!(
        ints(&mv[0], &fields),
        [5100, 1200, 2700, 0, 0, 0, 3900, 9000]
    );
    assert_eq!(
        ints(&mv[0], &["new_customers", "expansion_customers"]),
        [1, 1]
    );
    // April: E new 3250; B contracts 3900 → 1200 (−2700); net 550 = 9550 − 9000.
    assert_eq!(
        ints(&mv[1], &fields),
        [9000, 3250, 0, 2700, 0, 0, 550, 9550]
    );
    // May: C churns 1200; D, who paid in January, reactivates 1200; net 0.
    assert_eq!(ints(&mv[2], &fields), [9550, 0, 0, 0, 1200, 1200, 0, 9550]);
    assert_eq!(
        ints(&mv[2], &["churned_customers", "reactivated_customers"]),
        [1, 1]
    );
    // June: nothing moved.
    assert_eq!(ints(&mv[3], &fields), [9550, 0, 0, 0, 0, 0, 0, 9550]);

    // Churn: customers churned / paying at the month's start; (churned + contraction) / MRR
    // at the month's start.
    let churn = rows(&app, "churn", 4, &finance).await;
    let fields = [
        "customers_at_start",
        "churned_customers",
        "mrr_at_start",
        "churned_mrr",
        "contraction_mrr",
    ];
    assert_eq!(ints(&churn[0], &fields), [2, 0, 5100, 0, 0]);
    assert_eq!(churn[0]["customer_churn_rate"], 0.0);
    // April: no customer left (0 / 3); revenue churn 2700 / 9000 = 0.3.
    assert_eq!(ints(&churn[1], &fields), [3, 0, 9000, 0, 2700]);
    assert_eq!(churn[1]["customer_churn_rate"], 0.0);
    assert!((churn[1]["revenue_churn_rate"].as_f64().unwrap() - 0.3).abs() < 1e-9);
    // May: 1 of 4 customers left: 0.25; revenue churn 1200 / 9550 ≈ 0.12565.
    assert_eq!(ints(&churn[2], &fields), [4, 1, 9550, 1200, 0]);
    assert_eq!(churn[2]["customer_churn_rate"], 0.25);
    assert!((churn[2]["revenue_churn_rate"].as_f64().unwrap() - 1200.0 / 9550.0).abs() < 1e-9);
    assert_eq!(ints(&churn[3], &fields), [4, 0, 9550, 0, 0]);

    // By plan: customers and MRR at each month's snapshot, money by payment/refund time.
    let by_plan = rows(&app, "by-plan", 4, &finance).await;
    let got: Vec<(String, String, Vec<i64>)> = by_plan
        .iter()
        .map(|r| {
            (
                r["month"].as_str().unwrap().to_owned(),
                r["plan"].as_str().unwrap().to_owned(),
                ints(
                    r,
                    &["customers", "mrr", "collected", "refunded", "net_revenue"],
                ),
            )
        })
        .collect();
    let row = |m: &str, p: &str, v: [i64; 5]| (m.to_owned(), p.to_owned(), v.to_vec());
    assert_eq!(
        got,
        [
            // March. Business: A 3900 + B 3900; paid A 1400 (the upgrade) + B 3900 = 5300.
            // Pro: C 1200; paid A 1200 + C 1200 + F 1200 = 3600, F's 1200 refunded (its
            // latest payment was for Pro): net 2400.
            row("2026-03", "business", [2, 7800, 5300, 0, 5300]),
            row("2026-03", "pro", [1, 1200, 3600, 1200, 2400]),
            // April. Business: A 3900 + E 3250 = 7150; paid B 3900 + E 39000 + A 3900 = 46800.
            // Pro: B 1200 + C 1200; paid C 1200.
            row("2026-04", "business", [2, 7150, 46_800, 0, 46_800]),
            row("2026-04", "pro", [2, 2400, 1200, 0, 1200]),
            // May. Business: A, E; paid A 3900. Pro: B, D; paid D 1200.
            row("2026-05", "business", [2, 7150, 3900, 0, 3900]),
            row("2026-05", "pro", [2, 2400, 1200, 0, 1200]),
            // June. Business: paid A 3900. Pro: paid B 1050 + D 1200 = 2250.
            row("2026-06", "business", [2, 7150, 3900, 0, 3900]),
            row("2026-06", "pro", [2, 2400, 2250, 0, 2250]),
        ]
    );

    // CSV export of each table: same figures, header first.
    let admin = staff_token(&app, "root@example.com", Role::Admin).await;
    let csv = |table: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let (status, ctype, body) = get(
                app,
                &format!("/v1/admin/revenue/{table}?months=4&format=csv"),
                &admin,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{table}");
            assert!(ctype.starts_with("text/csv"), "{table}: {ctype}");
            body.as_str().unwrap().to_owned()
        }
    };
    let text = csv("mrr").await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "month,currency,snapshot_at,mrr,arr,paying_customers,arpu,collected,refunded,net_revenue"
    );
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines[2],
        "2026-04,usd,2026-05-01T00:00:00+00:00,9550,114600,4,2388,48000,0,48000"
    );
    let text = csv("movements").await;
    assert!(
        text.contains("\r\n2026-05,usd,9550,0,0,0,1200,1200,0,9550,0,0,0,1,1\r\n"),
        "{text}"
    );
    let text = csv("churn").await;
    assert!(
        text.contains("\r\n2026-05,usd,4,1,0.2500,9550,1200,0,0.1257\r\n"),
        "{text}"
    );
    let text = csv("by-plan").await;
    assert!(
        text.starts_with("month,plan,currency,customers,mrr,collected,refunded,net_revenue\r\n")
    );
    assert!(
        text.contains("\r\n2026-03,pro,usd,1,1200,3600,1200,2400\r\n"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Through real webhooks

on_both!(revenue_from_signed_webhooks_upgrade_and_refund);
async fn revenue_from_signed_webhooks_upgrade_and_refund(backend: Backend) {
    // Arrange: two users whose Stripe customers are those of the fixture stories.
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.stripe_webhook_secret = Some(tollgate::domain::SecretString::new(WEBHOOK_SECRET));
    })
    .await
    else {
        return;
    };
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 9, 20, 12, 0, 0).unwrap());
    let ada = register(&app, "ada.upgrade@example.com").await;
    let rita = register(&app, "rita.refund@example.com").await;
    let mut tx = app.engine.db().begin().await.unwrap();
    for (customer, user) in [
        ("cus_2AZbDR2B1N8qY1", &ada.user_id),
        ("cus_rMbriFwt9BX6bN", &rita.user_id),
    ] {
        db::insert_customer(&mut tx, customer, user, t(2026, 9, 1))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    // Act: every event of both stories, signed and posted as Stripe would.
    for body in story("story-upgrade")
        .into_iter()
        .chain(story("story-refund"))
    {
        let e = deliver(&app, &body).await;
        assert_eq!(e.status, "applied", "{}: {:?}", e.id, e.error);
    }
    let finance = staff_token(&app, "cfo@example.com", Role::Finance).await;

    // Assert. Ada paid 1200 for Pro (Sep 3 → Oct 3), then 1350 on Sep 18 to move to Business
    // monthly: from then her MRR is Business's 3900 (the plan file's price: Stripe never
    // charged a full period of it yet). Rita pays 1200 for Pro, refunded in full on Sep 16;
    // a refund does not end her subscription, so her 1200 stays in MRR.
    let mrr = rows(&app, "mrr", 1, &finance).await;
    assert_eq!(mrr.len(), 1);
    assert_eq!(mrr[0]["month"], "2026-09");
    // MRR 3900 + 1200 = 5100, ARR 61200, 2 paying, ARPU 2550; collected 1200 + 1350 + 1200
    // = 3750 (the README's 2550 + 1200), refunded 1200, net 2550.
    assert_eq!(
        ints(
            &mrr[0],
            &[
                "mrr",
                "arr",
                "paying_customers",
                "arpu",
                "collected",
                "refunded",
                "net_revenue"
            ]
        ),
        [5100, 61_200, 2, 2550, 3750, 1200, 2550]
    );
    // Both are new this month: 3900 + 1200.
    let mv = rows(&app, "movements", 1, &finance).await;
    assert_eq!(
        ints(
            &mv[0],
            &["start_mrr", "new", "expansion", "new_customers", "end_mrr"]
        ),
        [0, 5100, 0, 2, 5100]
    );
    // Nobody paid at the start of September: the rates are undefined (null).
    let churn = rows(&app, "churn", 1, &finance).await;
    assert_eq!(churn[0]["customer_churn_rate"], Value::Null);
    assert_eq!(churn[0]["revenue_churn_rate"], Value::Null);
    // By plan: Business 3900 (Ada), paid 1350; Pro 1200 (Rita), paid Ada's 1200 + Rita's
    // 1200 = 2400, refunded 1200 → net 1200.
    let by_plan = rows(&app, "by-plan", 1, &finance).await;
    let got: Vec<(&str, Vec<i64>)> = by_plan
        .iter()
        .map(|r| {
            (
                r["plan"].as_str().unwrap(),
                ints(
                    r,
                    &["customers", "mrr", "collected", "refunded", "net_revenue"],
                ),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("business", vec![1, 3900, 1350, 0, 1350]),
            ("pro", vec![1, 1200, 2400, 1200, 1200]),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Who may look, and bad queries

on_both!(only_finance_and_admin_see_revenue_and_bad_queries_are_422);
async fn only_finance_and_admin_see_revenue_and_bad_queries_are_422(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = register(&app, "plain@example.com").await.access;
    let support = staff_token(&app, "help@example.com", Role::Support).await;
    let finance = staff_token(&app, "cfo@example.com", Role::Finance).await;
    let admin = staff_token(&app, "root@example.com", Role::Admin).await;
    let tables = ["mrr", "movements", "by-plan", "churn"];

    for table in tables {
        let path = format!("/v1/admin/revenue/{table}");
        for (who, token) in [("user", &user), ("support", &support)] {
            let (status, _, body) = get(&app, &path, token).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} {path}");
            assert_eq!(body["error"]["code"], "forbidden");
            // Refused before the query is read.
            let (status, _, _) = get(&app, &format!("{path}?months=abc"), token).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{who} {path}?months=abc");
        }
        for token in [&finance, &admin] {
            let (status, ctype, body) = get(&app, &path, token).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert!(ctype.starts_with("application/json"));
            // Twelve months by default; figures are zero on an empty history.
            if table != "by-plan" {
                assert_eq!(body["rows"].as_array().unwrap().len(), 12, "{path}");
            }
        }
        for bad in ["months=0", "months=121", "months=abc", "format=xml"] {
            let (status, _, body) = get(&app, &format!("{path}?{bad}"), &finance).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}?{bad}");
            assert_eq!(body["error"]["code"], "validation_failed", "{path}?{bad}");
        }
    }
    let res = app
        .http
        .get(app.url("/v1/admin/revenue/mrr"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "no credentials");

    // The OpenAPI document shows both answers of each table.
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for table in tables {
        let ok = &doc["paths"][format!("/v1/admin/revenue/{table}")]["get"]["responses"]["200"];
        for ctype in ["application/json", "text/csv"] {
            assert!(ok["content"][ctype].is_object(), "{table} {ctype}: {ok}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The CLI

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revenue_cli_prints_tables_and_csv() {
    // Arrange: one Pro customer paying now (the CLI reads the wall clock).
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let now = Utc::now().timestamp_millis();
    let day = 86_400_000;
    let mut tx = app.engine.db().begin().await.unwrap();
    db::put_invoice(
        &mut tx,
        &InvoiceRow {
            invoice_id: "in_cli".into(),
            customer_id: "cus_cli".into(),
            user_id: UserId::parse("usr_clicustomer").unwrap(),
            subscription_id: Some("sub_cli".into()),
            status: "paid".into(),
            amount_due: 1200,
            amount_paid: 1200,
            currency: "usd".into(),
            billing_reason: Some("subscription_create".into()),
            price_id: Some("price_pro_monthly".into()),
            plan_id: Some("pro".into()),
            period_start: Some(now - day),
            period_end: Some(now + 29 * day),
            created: now - day,
            paid_at: Some(now - day),
            failed_at: None,
            attempt_count: 1,
            updated_at: now,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("TOLLGATE_DATABASE_URL", &app.db.url)
            .env("TOLLGATE_LOG", "warn")
            .output()
            .unwrap()
    };

    // Act + Assert: CSV with the MRR of this month (1200, ARR 14400, 1 customer).
    let out = cli(&["revenue", "mrr", "--months", "1", "--csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("month,currency,snapshot_at,mrr,arr"));
    let cells: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        (cells[1], cells[3], cells[4], cells[5]),
        ("usd", "1200", "14400", "1")
    );
    // The table form, for each subcommand.
    for table in ["mrr", "movements", "by-plan", "churn"] {
        let out = cli(&["revenue", table, "--months", "2"]);
        assert!(out.status.success(), "{table}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("MONTH"), "{table}: {text}");
        assert!(text.contains("amounts in minor units"), "{table}");
    }
    let out = cli(&["revenue", "by-plan", "--months", "1"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().contains("pro"), "{text}");
    // A bad month count fails with the reason.
    let out = cli(&["revenue", "churn", "--months", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("months must be between 1 and 120"));
}
