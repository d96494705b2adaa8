//! The plan file (TOML) as `tollgate plans check|apply` and the back office read it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let report = tollgate::plans::check(src);
    // `parse` and `check` agree: a catalog comes back exactly when no problem was found.
    match tollgate::plans::parse(src) {
        Ok(_) => assert!(report.errors.is_empty() && report.catalog.is_some()),
        Err(problems) => {
            assert!(!problems.is_empty());
            assert_eq!(problems.len(), report.errors.len());
        }
    }
});
