//! Email addresses as registration, login and the back office take them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::domain::Email;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(email) = Email::parse(raw) {
        let s = email.as_str();
        // Normal form: trimmed, lowercase, bounded, and parsing it again changes nothing.
        assert!(s.len() <= 254);
        assert_eq!(s, s.trim());
        assert_eq!(s, s.to_lowercase());
        assert!(s.contains('@'));
        assert_eq!(Email::parse(s).expect("a parsed email parses").as_str(), s);
    }
});
