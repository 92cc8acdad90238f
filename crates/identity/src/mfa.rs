//! Second factor: RFC 6238 TOTP and one-time recovery codes.

use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

pub const ISSUER: &str = "tongban";
pub const STEP_SECONDS: u64 = 30;
pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("invalid TOTP parameters: {0}")]
pub struct TotpError(String);

/// A TOTP generator for a raw secret (SHA-1, 6 digits, 30 s: what authenticator apps expect).
pub fn totp(secret: &[u8], account: &str) -> Result<TOTP, TotpError> {
    // The otpauth label may not contain ':'; usernames never do, but be safe.
    let label = account.replace(':', "_");
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS, secret.to_vec(), Some(ISSUER.into()), label)
        .map_err(|e| TotpError(e.to_string()))
}

pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

pub fn secret_base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

pub fn secret_from_base32(text: &str) -> Option<Vec<u8>> {
    Secret::Encoded(text.trim().replace(' ', "").to_uppercase()).to_bytes().ok()
}

/// Checks `code` against the steps around `unix_secs` (one step of clock skew either way)
/// and returns the matching step, so that the caller can refuse a replay of a used step.
pub fn verify(totp: &TOTP, code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = unix_secs / STEP_SECONDS;
    [step.saturating_sub(1), step, step + 1].into_iter().find(|s| {
        let expected = totp.generate(s * STEP_SECONDS);
        bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
    })
}

/// An inline SVG QR code of the otpauth URI (no JavaScript, no image request).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

const CODE_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789-";

/// Fresh recovery codes like `k7mq-x2pd-wr`, about 50 bits each.
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let mut code = String::with_capacity(12);
            for (i, b) in bytes.iter().enumerate() {
                if i == 4 || i == 8 {
                    code.push('-');
                }
                code.push(CODE_ALPHABET.get(usize::from(*b) % 31).map_or('a', |c| *c as char));
            }
            code
        })
        .collect()
}

/// The stored form of a recovery code: HMAC-SHA-256 under a key derived from the master
/// key, so a database dump alone does not allow guessing codes offline. Hyphens and case do
/// not matter to the user.
pub fn recovery_code_hash(key: &[u8; 32], code: &str) -> String {
    use hmac::{Hmac, Mac};
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(normal.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 seed "12345678901234567890", 8 digits.
    #[test]
    fn rfc6238_test_vectors() {
        let seed = b"12345678901234567890".to_vec();
        let t = TOTP::new_unchecked(Algorithm::SHA1, 8, 1, 30, seed, None, String::new());
        for (time, expected) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(t.generate(time), expected, "T={time}");
        }
        let seed256 = b"12345678901234567890123456789012".to_vec();
        let t = TOTP::new_unchecked(Algorithm::SHA256, 8, 1, 30, seed256, None, String::new());
        assert_eq!(t.generate(59), "46119246");
        assert_eq!(t.generate(1111111109), "68084774");
    }

    #[test]
    fn verify_accepts_one_step_of_skew_and_reports_the_step() {
        let t = totp(&new_secret(), "wang.li").unwrap();
        let now = 1_800_000_000u64;
        let current = t.generate(now);
        assert_eq!(verify(&t, &current, now), Some(now / 30));
        assert_eq!(verify(&t, &t.generate(now - 30), now), Some(now / 30 - 1));
        assert_eq!(verify(&t, &t.generate(now + 30), now), Some(now / 30 + 1));
        assert_eq!(verify(&t, &t.generate(now - 90), now), None);
        assert_eq!(verify(&t, "12345", now), None);
        assert_eq!(verify(&t, "abcdef", now), None);
    }

    #[test]
    fn uri_and_qr() {
        let secret = new_secret();
        let t = totp(&secret, "wang.li").unwrap();
        let uri = t.get_url();
        assert!(uri.starts_with("otpauth://totp/tongban:wang.li?"), "{uri}");
        assert!(uri.contains(&format!("secret={}", secret_base32(&secret))));
        assert_eq!(secret_from_base32(&secret_base32(&secret)).unwrap(), secret);
        assert!(qr_svg(&uri).unwrap().contains("<svg"));
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_forgivingly() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let c = &codes[0];
        let key = [5u8; 32];
        assert_eq!(recovery_code_hash(&key, c), recovery_code_hash(&key, &c.to_uppercase().replace('-', " ")));
        assert_ne!(recovery_code_hash(&key, c), recovery_code_hash(&[6u8; 32], c));
    }
}
