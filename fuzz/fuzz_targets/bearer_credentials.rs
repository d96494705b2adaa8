//! `Authorization: Bearer …` as every authenticated route reads it: the header, then an API
//! key's shape or an access token's signature.
#![no_main]

use axum::http::{header::AUTHORIZATION, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tollgate::domain::{PlaintextApiKey, SecretString, UserId};
use tollgate::service::crypto::ServerKeys;
use tollgate::service::tokens::decode_access_token;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let Ok(token) = tollgate::http::auth::bearer(&headers) else {
        return;
    };
    assert!(!token.is_empty());

    if let Some(key) = PlaintextApiKey::parse(token) {
        // A parsed key is the text as given, and its shown prefix is its start.
        assert_eq!(key.expose(), token);
        assert!(token.starts_with(key.display_prefix()));
        assert!(!format!("{key:?}").contains(token));
    }
    let _ = UserId::parse(token);

    // Without the server secret no input is a valid access token.
    let keys = ServerKeys::derive(&SecretString::new("fuzz-server-secret-0123456789abcdef"));
    assert!(decode_access_token(&keys, token, 0).is_err());
});
