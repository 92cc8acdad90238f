//! Known devices: a browser that completed a sign-in to an account carries a token saying so,
//! and the per-source lockout does not apply to that account from that browser. An attacker
//! guessing passwords from a shared address (a community service centre, a carrier's NAT)
//! then locks out only browsers that never signed in, not the residents behind it.
//! The per-account lockout still applies to every device. Changing the password or signing
//! out everywhere voids every token the account's browsers hold.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// How long a browser stays known after its last full sign-in.
pub const KNOWN_DEVICE_DAYS: i64 = 180;

fn mac(key: &[u8; 32], account_id: &str, issued: i64) -> Option<Vec<u8>> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
    mac.update(account_id.as_bytes());
    mac.update(&[0]);
    mac.update(issued.to_string().as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

/// `ACCOUNT.ISSUED.MAC`: which account, when, and a keyed hash of both.
pub fn issue(key: &[u8; 32], account_id: &str, now: DateTime<Utc>) -> Option<String> {
    let issued = now.timestamp();
    Some(format!("{account_id}.{issued}.{}", hex::encode(mac(key, account_id, issued)?)))
}

/// Whether the token was issued by this platform for this account, not before
/// `valid_after` (Unix seconds), and is still valid.
pub fn holds(key: &[u8; 32], token: &str, account_id: &str, valid_after: i64, now: DateTime<Utc>) -> bool {
    let mut parts = token.rsplitn(3, '.');
    let (Some(given), Some(issued), Some(account)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let Ok(issued) = issued.parse::<i64>() else { return false };
    let fresh =
        issued >= valid_after && issued <= now.timestamp() && now.timestamp() - issued < KNOWN_DEVICE_DAYS * 86_400;
    let Ok(given) = hex::decode(given) else { return false };
    let Some(expected) = mac(key, account, issued) else { return false };
    fresh && account == account_id && bool::from(expected.ct_eq(&given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_for_its_account_until_it_ages() {
        let key = [7u8; 32];
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let token = issue(&key, "acc-1", now).unwrap();
        assert!(holds(&key, &token, "acc-1", 0, now));
        assert!(!holds(&key, &token, "acc-2", 0, now), "another account");
        assert!(!holds(&[8u8; 32], &token, "acc-1", 0, now), "another platform's key");
        let later = now + chrono::Duration::days(KNOWN_DEVICE_DAYS);
        assert!(!holds(&key, &token, "acc-1", 0, later), "aged out");
        let forged = token.replacen("acc-1", "acc-2", 1);
        assert!(!holds(&key, &forged, "acc-2", 0, now), "the account cannot be swapped");
        assert!(!holds(&key, "garbage", "acc-1", 0, now));
        assert!(!holds(&key, &token, "acc-1", now.timestamp() + 1, now), "voided by a later password change");
    }
}
