fn main() {
    #[cfg(feature = "desktop")]
    tauri_build::build();
    // `sqlx::migrate!` embeds the migrations: a new one has to rebuild the crate.
    println!("cargo::rerun-if-changed=migrations");
    api_reference();
}

/// Embeds the `/docs` renderer when `scripts/api-reference` has fetched it (`make serve`,
/// `make run`, `make test` do); without it the binary still builds and `/docs` says how to add
/// it (see `http/docs.rs`).
fn api_reference() {
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("target")
        .join("api-reference");
    let js = dir.join("standalone.js");
    // Watched so that fetching the renderer later re-embeds it; created empty so that a build
    // without it is not re-run every time (cargo re-runs a build script watching a missing path).
    let _ = std::fs::create_dir_all(&dir);
    println!("cargo::rustc-check-cfg=cfg(tollgate_api_reference)");
    println!("cargo::rerun-if-changed={}", dir.display());
    if js.is_file() {
        println!("cargo::rustc-cfg=tollgate_api_reference");
        println!(
            "cargo::rustc-env=TOLLGATE_API_REFERENCE_JS={}",
            js.display()
        );
        let version = std::fs::read_to_string(dir.join("version")).unwrap_or_default();
        println!(
            "cargo::rustc-env=TOLLGATE_API_REFERENCE_VERSION={}",
            version.trim()
        );
    }
}
