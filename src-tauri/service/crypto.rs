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
    /// Hashes of one-time tokens sent by mail (verification, password reset).
    link: Vec<u8>,
    /// Signs two-factor login challenges.
    challenge: Vec<u8>,
    /// Hashes of recovery codes.
    recovery: Vec<u8>,
    /// Encrypts TOTP secrets at rest (ChaCha20-Poly1305).
    mfa_secret: Vec<u8>,
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

impl ServerKeys {
    pub fn derive(secret: &SecretString) -> Self {
        let s = secret.expose().as_bytes();
        Self {
            jwt: hmac(s, b"tollgate/jwt/v1"),
            api_key: hmac(s, b"tollgate/api-key/v1"),
            refresh: hmac(s, b"tollgate/refresh-token/v1"),
            link: hmac(s, b"tollgate/link-token/v1"),
            challenge: hmac(s, b"tollgate/mfa-challenge/v1"),
            recovery: hmac(s, b"tollgate/recovery-code/v1"),
            mfa_secret: hmac(s, b"tollgate/mfa-secret-encryption/v1"),
        }
    }

    /// Keyed hash of a token sent by mail, as stored and looked up.
    pub fn hash_link_token(&self, token: &str) -> String {
        hex::encode(hmac(&self.link, token.as_bytes()))
    }

    /// Keyed hash of a recovery code; normalised first, so `ABCD-EFGH` and `abcdefgh` match.
    pub fn hash_recovery_code(&self, user: &str, code: &str) -> String {
        let normal: String = code
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        hex::encode(hmac(&self.recovery, format!("{user}:{normal}").as_bytes()))
    }

    /// `payload.signature`, both base64url.
    pub fn sign_challenge(&self, payload: &str) -> String {
        let sig = hmac(&self.challenge, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    /// The payload of a challenge this server signed, or `None`.
    pub fn open_challenge(&self, challenge: &str) -> Option<String> {
        let (payload, sig) = challenge.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = HmacSha256::new_from_slice(&self.challenge).expect("any key length");
        mac.update(&payload);
        mac.verify_slice(&sig).ok()?;
        String::from_utf8(payload).ok()
    }

    /// Encrypts a TOTP secret: base64url of nonce and ciphertext.
    pub fn encrypt_secret(&self, plain: &[u8]) -> String {
        use chacha20poly1305::aead::{Aead, KeyInit};
        let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&self.mfa_secret)
            .expect("a 32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(&nonce.into(), plain)
            .expect("encryption of a short secret");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Decrypts what [`ServerKeys::encrypt_secret`] wrote; `None` when it was written with
    /// another server secret or changed.
    pub fn decrypt_secret(&self, sealed: &str) -> Option<Vec<u8>> {
        use chacha20poly1305::aead::{Aead, KeyInit};
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, body) = bytes.split_at(12);
        let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&self.mfa_secret).ok()?;
        cipher
            .decrypt(chacha20poly1305::Nonce::from_slice(nonce), body)
            .ok()
    }

    /// HMAC-SHA256 of an API key's plaintext, as stored and looked up.
    pub fn hash_api_key(&self, plaintext: &str) -> String {
        hex::encode(hmac(&self.api_key, plaintext.as_bytes()))
    }

    pub fn hash_refresh_token(&self, token: &str) -> String {
        hex::encode(hmac(&self.refresh, token.as_bytes()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> ServerKeys {
        ServerKeys::derive(&SecretString::new(secret))
    }

    #[test]
    fn totp_secrets_are_sealed_and_only_this_secret_opens_them() {
        let k = keys("one-server-secret-0123456789");
        let sealed = k.encrypt_secret(b"twenty bytes secret!");
        assert!(!sealed.contains("twenty"));
        assert_eq!(k.decrypt_secret(&sealed).unwrap(), b"twenty bytes secret!");
        assert_ne!(
            k.encrypt_secret(b"twenty bytes secret!"),
            sealed,
            "fresh nonce"
        );
        assert!(keys("another-secret-0123456789")
            .decrypt_secret(&sealed)
            .is_none());
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(k
            .decrypt_secret(&String::from_utf8(tampered).unwrap())
            .is_none());
    }

    #[test]
    fn challenges_open_only_unchanged_and_with_the_same_secret() {
        let k = keys("one-server-secret-0123456789");
        let c = k.sign_challenge("usr_1|123");
        assert_eq!(k.open_challenge(&c).as_deref(), Some("usr_1|123"));
        assert!(keys("another-secret-0123456789")
            .open_challenge(&c)
            .is_none());
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("usr_2|123"),
            c.split_once('.').unwrap().1
        );
        assert!(k.open_challenge(&forged).is_none());
    }
}
