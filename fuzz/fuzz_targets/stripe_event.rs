//! Stripe event payloads: the envelope read on receipt, the typed event, the facts Tollgate
//! acts on, and the files `tollgate stripe replay` reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::stripe::{event, replay};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = event::envelope(data) {
        assert!(env.id.starts_with("evt_"));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ev) = event::parse(text) {
        let raw: serde_json::Value = serde_json::from_str(text).expect("parsed once already");
        let _ = event::facts(&ev, &raw);
    }
    let _ = replay::parse_events(text, "fuzz");
});
