//! The `Stripe-Signature` header against a webhook body.
#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use tollgate::domain::SecretString;
use tollgate::stripe::signature::{secrets, verify, TOLERANCE_SECS};

const NOW: i64 = 1_767_225_600;

fn sign(secret: &str, t: &str, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

fuzz_target!(|data: &[u8]| {
    // The first line is the header, the rest the body.
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (header, body) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let ours = secrets(Some(&SecretString::new("whsec_fuzz_one, whsec_fuzz_two")));

    // A header made up by the input never verifies: it cannot know the secret.
    assert!(verify(Some(header), body, &ours, NOW).is_err());

    // The same header with a genuine signature appended verifies exactly when its timestamp
    // is a number within the tolerance (Stripe keeps the first `t`).
    let t = header
        .split(',')
        .filter_map(|item| item.trim().split_once('='))
        .find(|(k, _)| *k == "t")
        .map(|(_, v)| v.to_owned());
    if let Some(t) = t {
        let signed = format!("{header},v1={}", sign("whsec_fuzz_two", &t, body));
        let result = verify(Some(&signed), body, &ours, NOW);
        match t.parse::<i64>() {
            Ok(ts) if (NOW - ts).abs() <= TOLERANCE_SECS => assert_eq!(result, Ok(ts)),
            _ => assert!(result.is_err()),
        }
        // A secret of another account never verifies it.
        let foreign = secrets(Some(&SecretString::new("whsec_someone_else")));
        assert!(verify(Some(&signed), body, &foreign, NOW).is_err());
    }
});
