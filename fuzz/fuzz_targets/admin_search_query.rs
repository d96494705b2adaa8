//! The query string of `GET /v1/admin/users` (the back office's search) and its page cursor.
#![no_main]

use axum::extract::Query;
use axum::http::Uri;
use libfuzzer_sys::fuzz_target;
use tollgate::service::admin::{cursor_decode, cursor_encode, UserQuery};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = format!("/v1/admin/users?{query}").parse::<Uri>() {
        if let Ok(Query(q)) = Query::<UserQuery>::try_from_uri(&uri) {
            if let Some(c) = &q.cursor {
                let _ = cursor_decode(c);
            }
        }
    }
    let _ = cursor_decode(query);
    // Any key without a line break and any id come back from a cursor as they went in.
    if let Some((key, id)) = query.split_once('\n') {
        let cursor = cursor_encode(key, id);
        assert_eq!(
            cursor_decode(&cursor).expect("our own cursor"),
            (key.to_owned(), id.to_owned())
        );
    }
});
