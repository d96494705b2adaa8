//! The console's second-part screens (plans workbench, revenue export, API listener) through
//! the same methods the Tauri commands wrap, and their `/v1/admin/*` twins over HTTP.

use crate::helpers::{staff_token, test_settings, Backend, TestApp, TestDb};
use crate::on_both;
use serde_json::{json, Value};
use tollgate::desktop::{Console, ErrorCode, RecentConnections};
use tollgate::domain::Role;
use tollgate::service::audit::AuditFilter;
use tollgate::service::revenue::RevenueTable;
use tollgate::Engine;

const PASSWORD: &str = "staff-password";

/// A console on a fresh database with one staff account per role, signed in as `role`.
async fn console_as(backend: Backend, role: Role) -> Option<(Console, Engine, TestDb)> {
    let db = TestDb::new(backend).await?;
    let console = Console::new(test_settings(&db.url), RecentConnections::new(None));
    console.connect(&db.url).await.expect("connects");
    let engine = console.engine().await.expect("open");
    for r in [Role::Admin, Role::Support, Role::Finance] {
        engine
            .create_staff(&format!("{r}@staff.test"), r, Some(PASSWORD))
            .await
            .unwrap();
    }
    console
        .sign_in(&format!("{role}@staff.test"), PASSWORD)
        .await
        .unwrap();
    Some((console, engine, db))
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Writes `text` to a file in a fresh temporary directory and returns its path.
fn file_with(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

on_both!(a_bad_plan_file_shows_each_problem_with_its_line);
async fn a_bad_plan_file_shows_each_problem_with_its_line(backend: Backend) {
    // Arrange
    let Some((console, _engine, _db)) = console_as(backend, Role::Support).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(example("plans.toml")).unwrap();
    let bad = good.replacen("default_plan = \"free\"", "default_plan = \"gold\"", 1);
    assert_ne!(good, bad, "the example names its default plan");
    let bad_path = file_with(&dir, "bad.toml", &bad);

    // Act
    let check = console.check_plan_file(&bad_path).await.unwrap();
    let diff = console.diff_plan_file(&bad_path).await.unwrap_err();
    let missing = console
        .check_plan_file(&dir.path().join("nope.toml").display().to_string())
        .await
        .unwrap_err();

    // Assert
    assert!(!check.ok);
    let p = &check.problems[0];
    let expected_line = bad.lines().position(|l| l.contains("\"gold\"")).unwrap() as i64 + 1;
    assert_eq!(p.line, expected_line, "{p:?}");
    assert!(p.column >= 1);
    assert!(p.source_line.contains("gold"), "{p:?}");
    assert_eq!(diff.code, ErrorCode::InvalidCatalog);
    assert_eq!(missing.code, ErrorCode::FileUnreadable);
    let ok = console
        .check_plan_file(&example("plans.toml"))
        .await
        .unwrap();
    assert!(ok.ok && ok.problems.is_empty(), "{:?}", ok.problems);
}

on_both!(apply_and_migrate_are_for_admins_and_audited);
async fn apply_and_migrate_are_for_admins_and_audited(backend: Backend) {
    // Arrange: a customer on the shipped catalog's default plan.
    let Some((console, engine, _db)) = console_as(backend, Role::Finance).await else {
        return;
    };
    let customer = engine
        .register(tollgate::service::accounts::Registration {
            email: "c@example.com",
            password: "customer-password",
            full_name: None,
        })
        .await
        .unwrap();
    let before = console.plan_catalog().await.unwrap();
    let free = before
        .versions
        .iter()
        .find(|v| v.is_default)
        .expect("a default plan")
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let mut next = std::fs::read_to_string(example("plans.toml")).unwrap();
    let at = next.find(&format!("id = \"{}\"", free.plan_id)).unwrap();
    let description = at + next[at..].find("description = \"").unwrap();
    next.insert_str(description + "description = \"".len(), "Changed: ");
    let next_path = file_with(&dir, "next.toml", &next);

    // Act and assert: finance reads and diffs, but may not apply or migrate.
    let diff = console.diff_plan_file(&next_path).await.unwrap();
    assert!(
        diff.iter()
            .any(|c| c.plan == free.plan_id && c.subscribers >= 1),
        "{diff:?}"
    );
    let refused = console.apply_plan_file(&next_path, None).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let refused = console
        .migrate_plan_version(&free.label, &free.label, None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert_eq!(
        engine.catalog().await.unwrap().version,
        before.catalog_version
    );

    // An admin applies, sees the new version, and migrates the subscriber onto it.
    console.sign_out().await.unwrap();
    console.sign_in("admin@staff.test", PASSWORD).await.unwrap();
    let applied = console
        .apply_plan_file(&next_path, Some("new description"))
        .await
        .unwrap();
    assert!(applied.changed);
    let new_label = format!("{}@{}", free.plan_id, free.version + 1);
    assert_eq!(applied.new_plan_versions, vec![new_label.clone()]);
    let after = console.plan_catalog().await.unwrap();
    let old = after.versions.iter().find(|v| v.id == free.id).unwrap();
    assert!(!old.current && old.subscribers >= 1, "{old:?}");
    let moved = console
        .migrate_plan_version(&free.label, &new_label, Some("move them"))
        .await
        .unwrap();
    assert_eq!(moved.moved, old.subscribers);
    let after = console.plan_catalog().await.unwrap();
    let new = after
        .versions
        .iter()
        .find(|v| v.label == new_label)
        .unwrap();
    assert!(new.current && new.subscribers == moved.moved, "{new:?}");
    let detail = console.user_detail(customer.id.as_str()).await.unwrap();
    assert_eq!(
        serde_json::to_value(&detail).unwrap()["subscription"]["plan"],
        json!(new_label)
    );
    let audit = console.audit_log(&AuditFilter::default()).await.unwrap();
    let actions: Vec<&str> = audit.entries.iter().map(|a| a.action.as_str()).collect();
    assert!(
        actions.contains(&"plans.apply") && actions.contains(&"plans.migrate"),
        "{actions:?}"
    );
}

on_both!(simulate_runs_an_events_file_and_refuses_a_malformed_one);
async fn simulate_runs_an_events_file_and_refuses_a_malformed_one(backend: Backend) {
    let Some((console, _engine, _db)) = console_as(backend, Role::Support).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    let report = console
        .simulate_plan_file(&example("plans.toml"), &example("videos-events.jsonl"))
        .await
        .unwrap();
    let broken = file_with(&dir, "events.jsonl", "{\"user\": \"a\"}\nnot json\n");
    let err = console
        .simulate_plan_file(&example("plans.toml"), &broken)
        .await
        .unwrap_err();

    assert!(!report.simulation.outcomes.is_empty());
    assert!(!report.table.is_empty());
    assert_eq!(err.code, ErrorCode::ValidationFailed);
    assert!(err.message.contains("line 1"), "{}", err.message);
}

on_both!(revenue_exports_csv_for_finance_and_not_for_support);
async fn revenue_exports_csv_for_finance_and_not_for_support(backend: Backend) {
    let Some((console, _engine, _db)) = console_as(backend, Role::Finance).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("movements.csv").display().to_string();

    let exported = console
        .export_revenue_csv(RevenueTable::Movements, Some(3), &path)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("month,currency,start_mrr,new,expansion,contraction,churned,reactivation")
    );
    assert_eq!(exported.bytes as usize, text.len());
    assert_eq!(exported.rows as usize, text.lines().count() - 1);
    let to_dir = console
        .export_revenue_csv(RevenueTable::Mrr, None, &dir.path().display().to_string())
        .await
        .unwrap_err();
    assert_eq!(to_dir.code, ErrorCode::FileUnwritable);

    console.sign_out().await.unwrap();
    console
        .sign_in("support@staff.test", PASSWORD)
        .await
        .unwrap();
    let other = dir.path().join("support.csv");
    let refused = console
        .export_revenue_csv(RevenueTable::Mrr, None, &other.display().to_string())
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert!(!other.exists(), "nothing is written when refused");
    assert_eq!(
        console.revenue_mrr(None).await.unwrap_err().code,
        ErrorCode::Forbidden
    );
}

on_both!(the_api_screen_counts_requests_errors_and_refusals);
async fn the_api_screen_counts_requests_errors_and_refusals(backend: Backend) {
    let Some((console, _engine, _db)) = console_as(backend, Role::Support).await else {
        return;
    };
    let before = console.api_listener(None).await.unwrap();
    assert!(!before.status.running);
    assert_eq!(before.traffic.counts.requests, 0);

    let status = console.start_api(Some("127.0.0.1:0")).await.unwrap();
    let base = format!("http://{}", status.addr.clone().unwrap());
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/nowhere"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let unauth = http.get(format!("{base}/v1/me")).send().await.unwrap();
    assert_eq!(unauth.status(), 401);
    let request_id = unauth.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // The refusal is recorded in the background.
    let mut screen = console.api_listener(Some(5)).await.unwrap();
    for _ in 0..50 {
        if screen
            .traffic
            .latest_refusals
            .iter()
            .any(|d| d.request_id == request_id)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        screen = console.api_listener(Some(5)).await.unwrap();
    }

    assert!(screen.status.running);
    assert_eq!(screen.status.addr, status.addr);
    // `/health`, `/nowhere` (as the one `unmatched` route) and `/v1/me`.
    assert!(
        screen.traffic.counts.requests >= 3,
        "{:?}",
        screen.traffic.counts
    );
    assert!(screen.traffic.counts.requests_per_second > 0.0);
    let by_status: Vec<(String, i64)> = screen
        .traffic
        .counts
        .errors_by_status
        .iter()
        .map(|c| (c.key.clone(), c.count))
        .collect();
    assert!(by_status.contains(&("401".into(), 1)), "{by_status:?}");
    assert!(
        by_status.iter().all(|(s, _)| s.as_str() >= "400"),
        "{by_status:?}"
    );
    let codes: Vec<&str> = screen
        .traffic
        .counts
        .errors_by_code
        .iter()
        .map(|c| c.key.as_str())
        .collect();
    assert!(codes.contains(&"route_not_found"), "{codes:?}");
    assert!(
        screen
            .traffic
            .latest_refusals
            .iter()
            .any(|d| d.request_id == request_id),
        "{:?}",
        screen.traffic.latest_refusals
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tollgate_http_errors_total{code=\"route_not_found\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        console.api_listener(Some(0)).await.unwrap_err().code,
        ErrorCode::ValidationFailed
    );
    console.stop_api().await.unwrap();
}

on_both!(the_plans_routes_check_and_refuse_like_the_console);
async fn the_plans_routes_check_and_refuse_like_the_console(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let finance = staff_token(&app, "f@staff.test", Role::Finance).await;

    let check: Value = app
        .http
        .post(app.url("/v1/admin/plans/check"))
        .bearer_auth(&finance)
        .json(&json!({ "source": "metrics = [\"a\"]\n[[plans]]\nid = 5\n" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let apply = app
        .http
        .post(app.url("/v1/admin/plans/apply"))
        .bearer_auth(&finance)
        .json(&json!({ "source": "" }))
        .send()
        .await
        .unwrap();
    let catalog: Value = app
        .http
        .get(app.url("/v1/admin/plans"))
        .bearer_auth(&finance)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(check["ok"], json!(false));
    assert_eq!(check["problems"][0]["line"], json!(3), "{check}");
    assert_eq!(check["problems"][0]["source_line"], json!("id = 5"));
    assert_eq!(apply.status(), 403);
    assert!(
        catalog["versions"]
            .as_array()
            .is_some_and(|v| !v.is_empty()),
        "{catalog}"
    );
}

on_both!(the_usage_screen_reads_the_series_and_refuses_an_unknown_metric);
async fn the_usage_screen_reads_the_series_and_refuses_an_unknown_metric(backend: Backend) {
    use tollgate::service::usage_series::UsageSeriesQuery;
    let Some((console, engine, _db)) = console_as(backend, Role::Finance).await else {
        return;
    };
    let to = engine.now().date_naive();
    let week = UsageSeriesQuery {
        from: Some(to - chrono::Duration::days(6)),
        to: Some(to),
        ..Default::default()
    };

    let series = console.usage_series(&week).await.unwrap();
    let unknown = console
        .usage_series(&UsageSeriesQuery {
            metric: Some("no-such-metric".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();

    assert_eq!(series.buckets.len(), 7, "one bucket per day");
    assert_eq!(series.rows.len(), 7);
    assert!(
        series.rows.iter().all(|r| r.net == 0),
        "a new database has no usage"
    );
    assert_eq!(unknown.code, ErrorCode::ValidationFailed);
    assert_eq!(unknown.field.as_deref(), Some("metric"));
}
