//! `Stripe-Signature` verification, as Stripe specifies it: the header carries a timestamp `t`
//! and one or more `v1` signatures, each a hex HMAC-SHA256 of `"{t}.{payload}"` under a webhook
//! secret. Any `v1` may match any configured secret (several during a rotation); the timestamp
//! must be within the tolerance of now, against replays.

use crate::domain::SecretString;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's default tolerance between the signature's timestamp and now.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature was refused (said in the 400 answer; it reveals nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("no v1 signature matches a webhook secret")]
    NoMatch,
    #[error("the signature timestamp is {0} s away from now (tolerance {TOLERANCE_SECS} s)")]
    OutsideTolerance(i64),
}

/// The webhook secrets of a setting: comma-separated, blanks ignored.
pub fn secrets(raw: Option<&SecretString>) -> Vec<SecretString> {
    raw.map(|s| {
        s.expose()
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(SecretString::new)
            .collect()
    })
    .unwrap_or_default()
}

fn expected(secret: &SecretString, timestamp: &str, payload: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

fn hex_decode(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Checks a `Stripe-Signature` header against the raw body; returns the signed timestamp.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[SecretString],
    now_secs: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" if timestamp.is_none() => timestamp = Some(v),
            "v1" => signatures.push(v),
            _ => {} // v0 (test-mode legacy) and unknown schemes are ignored, as Stripe does
        }
    }
    let (Some(t_raw), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    let t: i64 = t_raw.parse().map_err(|_| SignatureError::Malformed)?;
    let mut matched = false;
    for secret in secrets {
        let want = expected(secret, t_raw, payload);
        for sig in &signatures {
            if let Some(given) = hex_decode(sig) {
                // Constant-time, and no early exit that would tell which one matched.
                matched |= bool::from(want.ct_eq(&given));
            }
        }
    }
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    let skew = now_secs - t;
    if skew.abs() > TOLERANCE_SECS {
        return Err(SignatureError::OutsideTolerance(skew));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(payload: &[u8], secret: &str, t: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(payload);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn s(x: &str) -> Vec<SecretString> {
        secrets(Some(&SecretString::new(x)))
    }

    #[test]
    fn accepts_any_matching_secret_and_signature() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(body, "whsec_new", 1000);
        assert_eq!(
            verify(Some(&header), body, &s("whsec_old, whsec_new"), 1000),
            Ok(1000)
        );
        let two = format!("{header},v1={}", "0".repeat(64));
        assert_eq!(verify(Some(&two), body, &s("whsec_new"), 1200), Ok(1000));
    }

    #[test]
    fn refuses_tampering_other_secrets_and_old_timestamps() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(body, "whsec_a", 1000);
        assert_eq!(
            verify(Some(&header), br#"{"id":"evt_2"}"#, &s("whsec_a"), 1000),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&header), body, &s("whsec_b"), 1000),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&header), body, &s("whsec_a"), 1301),
            Err(SignatureError::OutsideTolerance(301))
        );
        assert_eq!(verify(Some(&header), body, &s("whsec_a"), 1300), Ok(1000));
        assert_eq!(
            verify(None, body, &s("whsec_a"), 1000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some("t=1000"), body, &s("whsec_a"), 1000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some(&header), body, &[], 1000),
            Err(SignatureError::NoMatch)
        );
    }
}
