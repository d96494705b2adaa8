//! Keys derived from the server secret, and the keyed hashes built on them.

use crate::domain::SecretString;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Purpose-separated keys, so that a token signature can never be confused with a key hash.
pub struct ServerKeys {
    pub(crate) jwt: Vec<u8>,
    api_key: Vec<u8>,
    refresh: Vec<u8>,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(***)")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ServerKeys {
    pub fn derive(secret: &SecretString) -> Self {
        let s = secret.expose().as_bytes();
        Self {
            jwt: hmac(s, b"tollgate/jwt/v1"),
            api_key: hmac(s, b"tollgate/api-key/v1"),
            refresh: hmac(s, b"tollgate/refresh-token/v1"),
        }
    }

    /// HMAC-SHA256 of an API key's plaintext, as stored and looked up.
    pub fn hash_api_key(&self, plaintext: &str) -> String {
        hex(&hmac(&self.api_key, plaintext.as_bytes()))
    }

    pub fn hash_refresh_token(&self, token: &str) -> String {
        hex(&hmac(&self.refresh, token.as_bytes()))
    }
}

/// `n` random bytes from the OS generator, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `n` random base62 characters (about 5.95 bits each), for API keys users copy around.
pub fn random_base62(n: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| {
            // Rejection sampling keeps every character equally likely.
            loop {
                let b = (rng.next_u32() & 0xff) as u8;
                if b < 248 {
                    return ALPHABET[(b % 62) as usize] as char;
                }
            }
        })
        .collect()
}
