//! The `tollgate` binary as a terminal user runs it.

use std::process::Command;

fn tollgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TOLLGATE_LOG", "warn")
        .output()
        .expect("the binary runs")
}

#[test]
fn every_shipped_catalog_checks_clean() {
    for file in [
        "examples/plans.toml",
        "examples/credits.toml",
        "examples/job-search.toml",
    ] {
        let out = tollgate(&["plans", "check", file]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("));
    }
}

#[test]
fn simulate_output_matches_the_checked_in_expectation() {
    let out = tollgate(&[
        "plans",
        "simulate",
        "examples/plans.toml",
        "--events",
        "examples/videos-events.jsonl",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(format!(
        "{}/examples/videos-simulation.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    let json = tollgate(&[
        "plans",
        "simulate",
        "examples/plans.toml",
        "--events",
        "examples/videos-events.jsonl",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(v["outcomes"].as_array().unwrap().len(), 12);
    let fourth_of_alice = v["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["line"] == 7)
        .unwrap();
    assert_eq!(fourth_of_alice["reason"], "quota_exceeded");
    assert_eq!(fourth_of_alice["used"], 3);
}

#[test]
fn simulate_rejects_a_malformed_events_file_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("bad.jsonl");
    std::fs::write(&events, "{\"user\": \"a\", \"plan\": \"free\", \"metric\": \"videos\", \"at\": \"2026-01-01T00:00:00Z\"}\n{not json}\n").unwrap();
    let out = tollgate(&[
        "plans",
        "simulate",
        "examples/plans.toml",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each kind of mistake, with the sentence and position `plans check` must report.
#[test]
fn check_reports_each_kind_of_bad_file_with_line_and_column() {
    let base = r#"metrics = ["videos"]
features = ["vision", "qa"]
[requires]
qa = ["vision"]
"#;
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
rate_limits = { vidoes = { requests = 5, window = "1h" } }
"#,
            "8:17",
            "rate limit on unknown metric or scope `vidoes`",
        ),
        (
            r#"[[plans]]
id = "free"
price = { amount = -100, interval = "month" }
"#,
            "7:20",
            "negative price",
        ),
        (
            r#"[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
"#,
            "9:6",
            "duplicate plan id `free`",
        ),
        (
            r#"[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
[[plans]]
id = "pro"
price = { amount = 900, interval = "month" }
"#,
            "10:9",
            "plan `pro` is paid but has no Stripe price",
        ),
        (
            r#"[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
features = { qa = true }
"#,
            "6:6",
            "`qa`, which depends on `vision`",
        ),
        (
            r#"[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { minutes = { limit = 3, per = "day" } }
"#,
            "8:12",
            "quota on unknown metric `minutes`",
        ),
        (
            r#"[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
quotas = { videos = { limit = 3, per = "week" } }
"#,
            "8:40",
            "must be \"day\", \"month\" or \"billing_period\"",
        ),
        (
            r#"[[plans]]
id = "free"
price = { amount = 0, interval = "month" }
rate_limits = { api = { requests = 5, window = "fortnight" } }
"#,
            "8:48",
            "window `fortnight`",
        ),
        ("[[plans]]\nid = \"free\"\nprice = { amount = 0, interval = \"month\" }\nsurprise = 1\n", "8:1", "unknown field `surprise`"),
        ("this is not toml\n", "5:6", ""),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (plans, position, message)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.toml"));
        std::fs::write(&path, format!("{base}{plans}")).unwrap();
        let out = tollgate(&["plans", "check", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {i} must fail");
        let expected = format!("case{i}.toml:{position}: ");
        assert!(
            stderr.contains(&expected),
            "case {i}: expected `{expected}` in:\n{stderr}"
        );
        assert!(
            stderr.contains(message),
            "case {i}: expected `{message}` in:\n{stderr}"
        );
    }
}

#[test]
fn help_names_the_commands_a_newcomer_needs() {
    let out = tollgate(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "migrate", "staff", "plans", "usage"] {
        assert!(text.contains(cmd), "{cmd} missing from --help:\n{text}");
    }
}

#[test]
fn migrate_and_staff_create_work_on_a_fresh_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("TOLLGATE_DATABASE_URL", &url)
            .env("TOLLGATE_ARGON2__MEMORY_KIB", "1024")
            .env("TOLLGATE_ARGON2__ITERATIONS", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "staff",
        "create",
        "--email",
        "Boss@Example.com",
        "--role",
        "admin",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("boss@example.com") && text.contains("admin"),
        "{text}"
    );
    let bad = run(&[
        "staff",
        "create",
        "--email",
        "x@example.com",
        "--role",
        "user",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a staff role"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_list_and_show_read_the_outbox_without_smtp() {
    // Arrange: a registration on a SQLite file, with no SMTP URL: its mail waits.
    let db = crate::helpers::TestDb::new(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let engine = tollgate::Engine::start(crate::helpers::test_settings(&db.url))
        .await
        .unwrap();
    let user = engine
        .register(tollgate::service::accounts::Registration {
            email: "outbox@example.com",
            password: "password1",
            full_name: None,
        })
        .await
        .unwrap();
    engine.shutdown().await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("TOLLGATE_DATABASE_URL", &db.url)
            .env("TOLLGATE_LOG", "warn")
            .env_remove("TOLLGATE_SMTP_URL")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };

    // Act
    let list = run(&["mail", "list", "--json"]);

    // Assert
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let mail: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(mail.as_array().unwrap().len(), 1);
    assert_eq!(mail[0]["to"], "outbox@example.com");
    assert_eq!(mail[0]["user_id"], user.id.as_str());
    assert_eq!(mail[0]["status"], "pending");
    let text = String::from_utf8_lossy(&run(&["mail", "list"]).stdout).into_owned();
    assert!(
        text.contains("verify_email") && text.contains("outbox@example.com"),
        "{text}"
    );
    let show = run(&["mail", "show", mail[0]["id"].as_str().unwrap()]);
    let body = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success());
    assert!(
        body.contains("subject:  Confirm your email address for Tollgate"),
        "{body}"
    );
    assert!(body.contains("/verify-email?token="), "{body}");
    let missing = run(&["mail", "show", "mail_nope"]);
    assert!(!missing.status.success());
}
