//! The desktop console's commands, driven through the same methods the Tauri commands wrap
//! (no window): sign-in, the permission matrix, and parity with the admin HTTP routes.

use crate::helpers::{staff_token, test_settings, Backend, TestApp, TestDb};
use crate::on_both;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tollgate::desktop::{CommandError, Console, ErrorCode, RecentConnections};
use tollgate::domain::{Role, UserId};
use tollgate::service::accounts::Registration;
use tollgate::service::admin::{Fix, UserQuery};
use tollgate::service::api_keys::NewKey;
use tollgate::service::audit::AuditFilter;
use tollgate::service::decisions::{Refusal, RefusalDetail};
use tollgate::service::permissions::{allows, Action};
use tollgate::service::revenue::RevenueTable;
use tollgate::service::stripe_events::admin::{ReplayRequest, StripeEventQuery};
use tollgate::service::subscriptions::Effective;
use tollgate::service::usage_series::UsageSeriesQuery;
use tollgate::stripe::replay::EventInput;
use tollgate::Engine;

const PASSWORD: &str = "staff-password";

/// A console connected to a fresh database, as `connect` opens it.
async fn console_on(backend: Backend) -> Option<(Console, TestDb)> {
    let db = TestDb::new(backend).await?;
    let console = Console::new(test_settings(&db.url), RecentConnections::new(None));
    console.connect(&db.url).await.expect("connects");
    Some((console, db))
}

async fn engine(console: &Console) -> Engine {
    console.engine().await.expect("a database is open")
}

/// The console's command names, read from the one specta builder.
fn console_commands() -> Vec<String> {
    struct Names(Arc<Mutex<Vec<String>>>);
    impl tauri_specta::LanguageExt for Names {
        type Error = std::io::Error;
        fn export(
            self,
            cfg: &tauri_specta::BuilderConfiguration,
            _path: &std::path::Path,
        ) -> Result<(), Self::Error> {
            let mut names = self.0.lock().unwrap();
            names.extend(cfg.commands.iter().map(|f| f.name().to_string()));
            Ok(())
        }
    }
    let names = Arc::new(Mutex::new(Vec::new()));
    tollgate::desktop::specta_builder()
        .export(Names(names.clone()), "unused")
        .expect("listing commands");
    let list = names.lock().unwrap().clone();
    assert!(list.len() > 20, "the builder lists the commands: {list:?}");
    list
}

/// Commands that act on no user and check no back-office permission.
const UNGUARDED: [&str; 14] = [
    "connection_state",
    "connect",
    "disconnect",
    "default_database_path",
    "create_first_admin",
    "sign_in",
    "sign_in_mfa",
    "sign_out",
    "permissions",
    "list_plans",
    "status",
    "start_api",
    "stop_api",
    "open_api_docs",
];

/// What one command acts on: a fresh customer with an API key and a recorded refusal.
struct Target {
    user: UserId,
    key: String,
    request_id: String,
    email: String,
    /// A stored Stripe event (of a type Tollgate does not act on).
    event: String,
}

/// A Stripe event of a type Tollgate stores but does not act on.
fn ignored_event(id: &str) -> String {
    json!({"id": id, "object": "event", "type": "charge.succeeded", "created": 1788444004,
        "livemode": false, "data": {"object": {"id": "ch_console", "object": "charge"}}})
    .to_string()
}

async fn target(engine: &Engine, n: usize) -> Target {
    let email = format!("customer{n}@example.com");
    let user = engine
        .register(Registration {
            email: &email,
            password: "customer-password",
            full_name: Some("A Customer"),
        })
        .await
        .expect("registers");
    let key = engine
        .create_api_key(
            &user.id,
            NewKey {
                name: "ci",
                scopes: None,
                expires_at: None,
            },
        )
        .await
        .expect("key");
    let request_id = format!("req_console_{n}");
    engine
        .record_refusal(Refusal {
            request_id: request_id.clone(),
            route: "/v1/meter".into(),
            status: 429,
            code: "rate_limited".into(),
            message: "too many requests".into(),
            details: RefusalDetail::RateLimited(tollgate::error::RateLimited {
                scope: "api".into(),
                limit: 30,
                window_s: 3600,
                retry_after_s: 10,
                resets_at: "2030-01-01T00:00:00Z".parse().unwrap(),
            }),
            user_id: Some(user.id.clone()),
            key_prefix: None,
            plan_version: Some("free@1".into()),
            subscription_status: Some("active".into()),
            limiter: None,
        })
        .await
        .expect("refusal recorded");
    let event = format!("evt_console_{n}");
    engine
        .replay_stripe_events(
            vec![EventInput {
                source: "console test".into(),
                payload: ignored_event(&event),
            }],
            false,
            |_, _, _| {},
        )
        .await
        .expect("event stored");
    Target {
        user: user.id,
        key: key.info.id.to_string(),
        request_id,
        email,
        event,
    }
}

/// Calls the command `name` as the console's signed-in staff member, on `t`.
async fn call(console: &Console, name: &str, t: &Target) -> Result<(), CommandError> {
    let id = t.user.as_str();
    let reason = Some("console test");
    match name {
        "home_stats" => console.home_stats().await.map(drop),
        "list_users" => console.list_users(&UserQuery::default()).await.map(drop),
        "user_detail" => console.user_detail(id).await.map(drop),
        "change_plan" => console
            .change_plan(id, "pro", Effective::Now, reason)
            .await
            .map(drop),
        "grant_credits" => console
            .grant_credits(id, "generations", 5, reason)
            .await
            .map(drop),
        "reset_usage" => console.reset_usage(id, None, reason).await.map(drop),
        "clear_limits" => console.clear_limits(id, reason).await.map(drop),
        "suspend_user" => console.suspend_user(id, reason).await.map(drop),
        "reactivate_user" => console.reactivate_user(id, reason).await.map(drop),
        "resend_verification" => console.resend_verification(id, reason).await.map(drop),
        "reset_two_factor" => console.reset_two_factor(id, reason).await.map(drop),
        "revoke_sessions" => console.revoke_sessions(id, None, reason).await.map(drop),
        "revoke_key" => console.revoke_key(id, &t.key, reason).await.map(drop),
        "impersonate" => console.impersonate(id, reason).await.map(drop),
        "delete_user" => console.delete_user(id, reason).await.map(drop),
        "explain_decision" => console.explain_decision(&t.request_id).await.map(drop),
        "apply_fix" => console
            .apply_fix(&t.request_id, Fix::ClearLimit, reason)
            .await
            .map(drop),
        "audit_log" => console.audit_log(&AuditFilter::default()).await.map(drop),
        "revenue_mrr" => console.revenue_mrr(None).await.map(drop),
        "revenue_movements" => console.revenue_movements(None).await.map(drop),
        "revenue_by_plan" => console.revenue_by_plan(None).await.map(drop),
        "revenue_churn" => console.revenue_churn(None).await.map(drop),
        "export_revenue_csv" => console
            .export_revenue_csv(RevenueTable::Mrr, None, &scratch_file("revenue.csv"))
            .await
            .map(drop),
        "plan_catalog" => console.plan_catalog().await.map(drop),
        "check_plan_file" => console
            .check_plan_file(&example("credits.toml"))
            .await
            .map(drop),
        "diff_plan_file" => console
            .diff_plan_file(&example("plans.toml"))
            .await
            .map(drop),
        "simulate_plan_file" => console
            .simulate_plan_file(&example("plans.toml"), &example("videos-events.jsonl"))
            .await
            .map(drop),
        // The catalog every test database has: nothing changes, but the permission is checked.
        "apply_plan_file" => console
            .apply_plan_file(&example("credits.toml"), reason)
            .await
            .map(drop),
        "migrate_plan_version" => console
            .migrate_plan_version("pro@1", "pro@1", reason)
            .await
            .map(drop),
        "api_listener" => console.api_listener(None).await.map(drop),
        "usage_series" => console
            .usage_series(&UsageSeriesQuery {
                user_id: Some(id.to_owned()),
                ..Default::default()
            })
            .await
            .map(drop),
        "stripe_events" => console
            .stripe_events(&StripeEventQuery::default())
            .await
            .map(drop),
        "stripe_event" => console.stripe_event(&t.event).await.map(drop),
        "replay_stripe_events" => console
            .replay_stripe_events(&ReplayRequest {
                ids: vec![t.event.clone()],
                dry_run: true,
                reason: None,
            })
            .await
            .map(drop),
        "import_stripe_events" => {
            let path = scratch_file("events.jsonl");
            std::fs::write(&path, ignored_event(&format!("{}_import", t.event))).unwrap();
            console
                .import_stripe_events(&path, true, reason)
                .await
                .map(drop)
        }
        "list_staff" => console.list_staff().await.map(drop),
        "set_staff_role" => console
            .set_staff_role(&t.email, Role::User, reason)
            .await
            .map(drop),
        "seed_demo" => console.seed_demo(3, &|_| {}).await.map(drop),
        other => panic!("the test does not know how to call the console command `{other}`"),
    }
}

/// A file under `examples/`.
fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A path in a fresh temporary directory (kept for the test's life).
fn scratch_file(name: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    dir.join(name).display().to_string()
}

/// Applies the credit catalog, so that credit grants have a credit metric to act on.
async fn with_credit_catalog(engine: &Engine) {
    let src = std::fs::read_to_string(format!(
        "{}/examples/credits.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    engine.apply_catalog(&src, None).await.unwrap();
}

on_both!(every_console_command_goes_through_the_permission_table);
async fn every_console_command_goes_through_the_permission_table(backend: Backend) {
    // Arrange: one staff account per role, and the actions each command checks (noted while
    // an admin runs it).
    let Some((console, _db)) = console_on(backend).await else {
        return;
    };
    let engine = engine(&console).await;
    with_credit_catalog(&engine).await;
    for role in Role::ALL {
        engine
            .create_staff(&format!("{role}@staff.test"), role, Some(PASSWORD))
            .await
            .unwrap();
    }
    let guarded: Vec<String> = console_commands()
        .into_iter()
        .filter(|c| !UNGUARDED.contains(&c.as_str()))
        .collect();
    console.sign_in("admin@staff.test", PASSWORD).await.unwrap();
    engine.note_authorizations();
    let mut checks: BTreeMap<String, BTreeSet<Action>> = BTreeMap::new();
    for (n, command) in guarded.iter().enumerate() {
        let t = target(&engine, 1000 + n).await;
        engine.take_authorizations();
        let _ = call(&console, command, &t).await;
        let noted: BTreeSet<Action> = engine.take_authorizations().into_iter().collect();
        assert!(
            !noted.is_empty(),
            "`{command}` checks no back-office permission"
        );
        checks.insert(command.clone(), noted);
    }
    console.sign_out().await.unwrap();

    // Act and assert: every role, every command.
    let mut n = 0;
    for role in Role::ALL {
        let signed_in = console
            .sign_in(&format!("{role}@staff.test"), PASSWORD)
            .await;
        if !role.is_staff() {
            assert_eq!(signed_in.unwrap_err().code, ErrorCode::NotStaff);
        }
        for command in &guarded {
            n += 1;
            let t = target(&engine, n).await;
            let result = call(&console, command, &t).await;
            let allowed = checks[command].iter().all(|a| allows(role, *a));
            match (role.is_staff(), allowed, result) {
                (false, _, Err(e)) => assert_eq!(e.code, ErrorCode::NotSignedIn, "{command}"),
                (true, false, Err(e)) => {
                    assert_eq!(e.code, ErrorCode::Forbidden, "{role} {command}: {e:?}")
                }
                // Demo data goes only into a database without customers.
                (true, true, Err(e)) if command == "seed_demo" => {
                    assert_eq!(e.code, ErrorCode::DatabaseNotEmpty, "{role} {command}")
                }
                (true, true, Ok(())) => {}
                (staff, allowed, result) => {
                    panic!("{role} {command}: staff {staff}, allowed {allowed}, got {result:?}")
                }
            }
        }
        // Commands that check no back-office action still need a signed-in staff member.
        let signed = [
            console.permissions().await.map(drop),
            console.list_plans().await.map(drop),
            console.start_api(Some("127.0.0.1:0")).await.map(drop),
            console.docs_url().await.map(drop),
            console.stop_api().await.map(drop),
        ];
        for (i, result) in signed.into_iter().enumerate() {
            match (role.is_staff(), result) {
                (true, Ok(())) => {}
                // Stopping a stopped API needs only an open database.
                (false, Ok(())) if i == 4 => {}
                (false, Err(e)) => assert_eq!(e.code, ErrorCode::NotSignedIn, "{role} #{i}"),
                (staff, result) => panic!("{role} #{i}: staff {staff}, got {result:?}"),
            }
        }
        if role.is_staff() {
            // With the listener off there is no page to open.
            let off = console.docs_url().await.unwrap_err();
            assert_eq!(off.code, ErrorCode::ApiStopped, "{role}");
            // The permissions command lists exactly the table's row.
            let listed = console.permissions().await.unwrap();
            let expected: Vec<Action> = Action::ALL
                .into_iter()
                .filter(|a| allows(role, *a))
                .collect();
            assert_eq!(listed, expected, "{role}");
            console.sign_out().await.unwrap();
        }
    }
}

/// A request body for `schema` with every required field set (enums take their first value),
/// so that the handler runs and reaches the service.
fn example_body(doc: &Value, schema: &Value) -> Value {
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                doc["components"]["schemas"][name].clone()
            }
            None => s.clone(),
        }
    };
    let schema = resolve(schema);
    if let Some(values) = schema["enum"].as_array() {
        return values[0].clone();
    }
    if let Some(one_of) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let first = one_of.iter().find(|s| s["type"] != "null").unwrap();
        return example_body(doc, first);
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .cloned()
            .unwrap_or(Value::Null),
        k => k.clone(),
    };
    match kind.as_str() {
        Some("object") => {
            let mut body = serde_json::Map::new();
            for field in schema["required"].as_array().into_iter().flatten() {
                let field = field.as_str().unwrap();
                body.insert(
                    field.to_owned(),
                    example_body(doc, &schema["properties"][field]),
                );
            }
            Value::Object(body)
        }
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        _ => json!("console@example.com"),
    }
}

on_both!(console_commands_and_admin_routes_cover_the_same_functions);
async fn console_commands_and_admin_routes_cover_the_same_functions(backend: Backend) {
    // Arrange: the real router with an admin token, and a console (each on a fresh database).
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    with_credit_catalog(&app.engine).await;
    let token = staff_token(&app, "root@staff.test", Role::Admin).await;
    let (console, _db) = console_on(backend)
        .await
        .expect("the same backend as the app");
    let console_engine = engine(&console).await;
    with_credit_catalog(&console_engine).await;
    console_engine
        .create_staff("desk@staff.test", Role::Admin, Some(PASSWORD))
        .await
        .unwrap();
    console.sign_in("desk@staff.test", PASSWORD).await.unwrap();
    app.engine.note_authorizations();
    console_engine.note_authorizations();

    // Act: every `/v1/admin/*` operation of the OpenAPI document, over HTTP.
    let doc = serde_json::to_value(tollgate::http::openapi()).unwrap();
    let mut http: BTreeMap<String, BTreeSet<Action>> = BTreeMap::new();
    let mut n = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/admin/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            n += 1;
            let t = target(&app.engine, n).await;
            let url = path
                .replace("{id}", t.user.as_str())
                .replace("{request_id}", &t.request_id);
            let mut req = app
                .http
                .request(method.clone(), app.url(&url))
                .bearer_auth(&token);
            if let Some(schema) =
                op["requestBody"]["content"]["application/json"]["schema"].as_object()
            {
                req = req.json(&example_body(&doc, &Value::Object(schema.clone())));
            }
            app.engine.take_authorizations();
            let res = req.send().await.unwrap();
            let noted: BTreeSet<Action> = app.engine.take_authorizations().into_iter().collect();
            assert!(
                !noted.is_empty(),
                "{method} {path} reached no back-office function ({})",
                res.status()
            );
            http.entry(format!("{method} {path}"))
                .or_default()
                .extend(noted);
        }
    }
    // … and every console command.
    let mut desk: BTreeMap<String, BTreeSet<Action>> = BTreeMap::new();
    for command in console_commands() {
        if UNGUARDED.contains(&command.as_str()) || command == "seed_demo" {
            continue;
        }
        n += 1;
        let t = target(&console_engine, n).await;
        console_engine.take_authorizations();
        let _ = call(&console, &command, &t).await;
        desk.insert(
            command,
            console_engine.take_authorizations().into_iter().collect(),
        );
    }

    // Assert: the same back-office functions, named by the permission each checks.
    let by_action = |m: &BTreeMap<String, BTreeSet<Action>>| -> BTreeMap<Action, Vec<String>> {
        let mut out: BTreeMap<Action, Vec<String>> = BTreeMap::new();
        for (name, actions) in m {
            for a in actions {
                out.entry(*a).or_default().push(name.clone());
            }
        }
        out
    };
    let (over_http, in_console) = (by_action(&http), by_action(&desk));
    let missing_in_console: Vec<_> = over_http
        .iter()
        .filter(|(a, _)| !in_console.contains_key(a))
        .collect();
    let missing_over_http: Vec<_> = in_console
        .iter()
        .filter(|(a, _)| !over_http.contains_key(a))
        .collect();
    assert!(
        missing_in_console.is_empty() && missing_over_http.is_empty(),
        "only over HTTP: {missing_in_console:?}; only in the console: {missing_over_http:?}"
    );
}

on_both!(sign_in_refuses_customers_and_revoked_sessions);
async fn sign_in_refuses_customers_and_revoked_sessions(backend: Backend) {
    // Arrange
    let Some((console, _db)) = console_on(backend).await else {
        return;
    };
    let engine = engine(&console).await;
    let customer = target(&engine, 1).await;
    engine
        .create_staff("support@staff.test", Role::Support, Some(PASSWORD))
        .await
        .unwrap();

    // A customer's account is refused, and no session is opened for it.
    let refused = console
        .sign_in(&customer.email, "customer-password")
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotStaff);
    assert!(engine
        .list_sessions(&customer.user, None)
        .await
        .unwrap()
        .is_empty());
    let wrong = console
        .sign_in("support@staff.test", "not-the-password")
        .await
        .unwrap_err();
    assert_eq!(wrong.code, ErrorCode::InvalidCredentials);
    let before = console.list_users(&UserQuery::default()).await.unwrap_err();
    assert_eq!(before.code, ErrorCode::NotSignedIn);

    // Act: sign in; the session is a real one, device `console`.
    let staff = console
        .sign_in("support@staff.test", PASSWORD)
        .await
        .unwrap();
    let sessions = engine.list_sessions(&staff.user_id, None).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, staff.session_id.to_string());
    assert_eq!(sessions[0].user_agent.as_deref(), Some("console"));
    assert!(console
        .title()
        .await
        .contains("support@staff.test (support)"));
    console
        .suspend_user(customer.user.as_str(), Some("fraud check"))
        .await
        .unwrap();
    let audited = console
        .audit_log(&AuditFilter {
            action: Some("user.suspend".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.entries.len(), 1);
    assert_eq!(audited.entries[0].actor, staff.user_id.to_string());
    assert_eq!(audited.entries[0].via.as_deref(), Some("console"));

    // Home counts today's refusals by code (the customer's rate-limit refusal).
    let refusals = console.home_stats().await.unwrap().refusals_today;
    assert_eq!(refusals.len(), 1);
    assert_eq!(
        (refusals[0].name.as_str(), refusals[0].count),
        ("rate_limited", 1)
    );
    let detail = console.user_detail(customer.user.as_str()).await.unwrap();
    assert_eq!(detail.refusals.len(), 1);
    assert_eq!(detail.refusals[0].decision.request_id, customer.request_id);
    assert!(detail.refusals[0].fixes.contains(&Fix::ClearLimit));

    // Revoking the session elsewhere signs the console out.
    engine
        .revoke_session(&staff.user_id, staff.session_id.as_str(), "revoked_by_user")
        .await
        .unwrap();
    let after = console.list_users(&UserQuery::default()).await.unwrap_err();
    assert_eq!(after.code, ErrorCode::NotSignedIn);
    assert!(console.connection_state().await.unwrap().staff.is_none());
    assert!(!console.title().await.contains("support@staff.test"));

    // Signing out revokes the session.
    let again = console
        .sign_in("support@staff.test", PASSWORD)
        .await
        .unwrap();
    console.sign_out().await.unwrap();
    let live = engine.list_sessions(&again.user_id, None).await.unwrap();
    assert!(live.iter().all(|s| s.id != again.session_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_bad_url_gives_a_clear_code() {
    let dir = tempfile::tempdir().unwrap();
    let console = Console::new(
        test_settings("sqlite::memory:"),
        RecentConnections::new(Some(dir.path().join("recent.json"))),
    );
    // Nothing is open yet.
    let state = console.connection_state().await.unwrap();
    assert!(state.database.is_none() && state.recent.is_empty());
    assert_eq!(
        console.status().await.unwrap_err().code,
        ErrorCode::NotConnected
    );

    let bad = console.connect("mysql://db/tollgate").await.unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidDatabaseUrl);
    let missing_dir = dir.path().join("no/such/folder/tollgate.db");
    let unopenable = console
        .connect(&format!("sqlite://{}", missing_dir.display()))
        .await
        .unwrap_err();
    assert_eq!(unopenable.code, ErrorCode::ConnectFailed);
    let refused = console
        .connect("postgres://nobody:secret@127.0.0.1:1/tollgate")
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::ConnectFailed);
    assert!(!refused.message.contains("secret"), "{}", refused.message);
    assert!(console.connection_state().await.unwrap().database.is_none());

    // A new SQLite file is created, migrated and remembered.
    let file = dir.path().join("new.db");
    let url = format!("sqlite://{}", file.display());
    let info = console.connect(&url).await.unwrap();
    assert!(file.exists());
    assert!(!info.has_staff && info.is_empty);
    let state = console.connection_state().await.unwrap();
    assert_eq!(state.recent.len(), 1);
    assert_eq!(state.recent[0].url, url);

    // First run: the first admin, then demo data with progress.
    let admin = console
        .create_first_admin("first@staff.test", "first-password")
        .await
        .unwrap();
    assert_eq!(admin.role, Role::Admin);
    let again = console
        .create_first_admin("second@staff.test", "first-password")
        .await
        .unwrap_err();
    assert_eq!(again.code, ErrorCode::StaffExists);
    let seen = Mutex::new(Vec::new());
    let summary = console
        .seed_demo(50, &|p| {
            seen.lock().unwrap().push((p.stage, p.done, p.total))
        })
        .await
        .unwrap();
    assert_eq!(summary.users, 50);
    let seen = seen.into_inner().unwrap();
    assert!(seen.contains(&("users".to_owned(), 50, 50)), "{seen:?}");
    let page = console.list_users(&UserQuery::default()).await.unwrap();
    assert_eq!(page.total, 51);
    let info = console.connection_state().await.unwrap().database.unwrap();
    assert!(info.has_staff && !info.is_empty);
    console.disconnect().await.unwrap();
    assert_eq!(
        console
            .list_users(&UserQuery::default())
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotConnected
    );
}

/// A TOTP code of `secret` (base32) for the time `t`.
fn totp_code(secret: &str, t: chrono::DateTime<chrono::Utc>) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .with_account_name("test")
        .build()
        .unwrap()
        .generate(t.timestamp() as u64)
        .to_string()
}

on_both!(sign_in_asks_for_the_second_factor_when_two_factor_is_on);
async fn sign_in_asks_for_the_second_factor_when_two_factor_is_on(backend: Backend) {
    // Arrange: a support member who turned two-factor on.
    let Some((console, _db)) = console_on(backend).await else {
        return;
    };
    let engine = engine(&console).await;
    let (staff, _) = engine
        .create_staff("support@staff.test", Role::Support, Some(PASSWORD))
        .await
        .unwrap();
    let enrolment = engine.start_totp(&staff).await.unwrap();
    let recovery = engine
        .confirm_totp(&staff, &totp_code(&enrolment.secret, engine.now()))
        .await
        .unwrap();

    // The password alone signs nobody in: mfa_required with a challenge, and no session.
    let asked = console
        .sign_in("support@staff.test", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(asked.code, ErrorCode::MfaRequired);
    let challenge = asked.challenge.clone().expect("the challenge comes along");
    assert!(engine
        .list_sessions(&staff.id, None)
        .await
        .unwrap()
        .is_empty());
    let still_out = console.list_users(&UserQuery::default()).await.unwrap_err();
    assert_eq!(still_out.code, ErrorCode::NotSignedIn);

    // A wrong code, a forged challenge, or no factor at all are refused.
    let next = totp_code(
        &enrolment.secret,
        engine.now() + chrono::Duration::seconds(30),
    );
    let wrong: String = next
        .chars()
        .map(|c| char::from_digit((c.to_digit(10).unwrap() + 5) % 10, 10).unwrap())
        .collect();
    let refused = console
        .sign_in_mfa(&challenge, Some(&wrong), None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidMfaCode);
    let forged = console
        .sign_in_mfa(&format!("{challenge}x"), Some(&next), None)
        .await
        .unwrap_err();
    assert_eq!(forged.code, ErrorCode::InvalidMfaCode);
    let neither = console
        .sign_in_mfa(&challenge, None, None)
        .await
        .unwrap_err();
    assert_eq!(neither.code, ErrorCode::ValidationFailed);
    assert!(engine
        .list_sessions(&staff.id, None)
        .await
        .unwrap()
        .is_empty());

    // Act: a valid code completes it, with a console session.
    let signed_in = console
        .sign_in_mfa(&challenge, Some(&next), None)
        .await
        .unwrap();
    assert_eq!(signed_in.user_id, staff.id);
    let sessions = engine.list_sessions(&staff.id, None).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, signed_in.session_id.to_string());
    assert_eq!(sessions[0].user_agent.as_deref(), Some("console"));
    console.list_users(&UserQuery::default()).await.unwrap();
    console.sign_out().await.unwrap();

    // A recovery code works once.
    let asked = console
        .sign_in("support@staff.test", PASSWORD)
        .await
        .unwrap_err();
    let challenge = asked.challenge.expect("a new challenge");
    let by_recovery = console
        .sign_in_mfa(&challenge, None, Some(&recovery[0]))
        .await
        .unwrap();
    assert_eq!(by_recovery.user_id, staff.id);
    assert_eq!(engine.recovery_codes_left(&staff.id).await.unwrap(), 9);
    console.sign_out().await.unwrap();
    let spent = console
        .sign_in_mfa(&challenge, None, Some(&recovery[0]))
        .await
        .unwrap_err();
    assert_eq!(spent.code, ErrorCode::InvalidMfaCode);
    let out = console.list_users(&UserQuery::default()).await.unwrap_err();
    assert_eq!(out.code, ErrorCode::NotSignedIn);
}
