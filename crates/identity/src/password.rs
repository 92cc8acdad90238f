//! Password policy and argon2id hashing.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use kernel::error::ErrorCode;
use kernel::secrets::SecretString;

const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");
pub const MIN_LENGTH: usize = 10;
const MAX_LENGTH: usize = 128;

/// Why a password was refused; each has a stable code for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("the password must be at least 10 characters long")]
    TooShort,
    #[error("the password must be at most 128 characters long")]
    TooLong,
    #[error("the password must not be or contain the username")]
    ContainsUsername,
    #[error("the password is too common")]
    Common,
}

impl PolicyViolation {
    pub fn code(self) -> ErrorCode {
        match self {
            PolicyViolation::TooShort => ErrorCode::PasswordTooShort,
            PolicyViolation::TooLong => ErrorCode::PasswordTooLong,
            PolicyViolation::ContainsUsername => ErrorCode::PasswordContainsUsername,
            PolicyViolation::Common => ErrorCode::PasswordTooCommon,
        }
    }
}

pub fn check_policy(username: &str, password: &str) -> Result<(), PolicyViolation> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PolicyViolation::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PolicyViolation::TooLong);
    }
    let lower = password.to_lowercase();
    let user = username.trim().to_lowercase();
    if !user.is_empty() && (lower == user || (user.chars().count() >= 3 && lower.contains(&user))) {
        return Err(PolicyViolation::ContainsUsername);
    }
    if COMMON_PASSWORDS.lines().any(|common| common == lower) {
        return Err(PolicyViolation::Common);
    }
    Ok(())
}

/// An argon2id PHC string (argon2 crate defaults: m=19 MiB, t=2, p=1).
pub fn hash(password: &SecretString) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default().hash_password(password.expose().as_bytes(), &salt)?.to_string())
}

pub fn verify(password: &SecretString, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing anyone knows, verified against when the username does not exist so
/// that an unknown user costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0lBnlzP4ltkaVQUMHhzpB2WfDVm+eZX9Z4rJ3kJWoZA"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check_policy("wang.li", "short"), Err(PolicyViolation::TooShort));
        assert_eq!(check_policy("wang.li", "九个汉字也不够长吧"), Err(PolicyViolation::TooShort));
        assert_eq!(check_policy("wang.li.admin", "wang.li.admin"), Err(PolicyViolation::ContainsUsername));
        assert_eq!(check_policy("wangli", "WangLi-2026-spring"), Err(PolicyViolation::ContainsUsername));
        assert_eq!(check_policy("wang.li", "1234567890"), Err(PolicyViolation::Common));
        assert_eq!(check_policy("wang.li", "Password123"), Err(PolicyViolation::Common));
        assert_eq!(check_policy("wang.li", &"x".repeat(129)), Err(PolicyViolation::TooLong));
        assert_eq!(check_policy("wang.li", "滇池边的红嘴鸥飞回来了"), Ok(()));
        assert_eq!(check_policy("wang.li", "correct horse battery"), Ok(()));
    }

    #[test]
    fn common_list_is_usable() {
        let lines: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert!(lines.len() > 100);
        assert!(lines.iter().all(|l| l.chars().count() >= MIN_LENGTH && *l == l.to_lowercase()));
    }

    #[test]
    fn hash_and_verify() {
        let pw = SecretString::new("a long enough passphrase".into());
        let phc = hash(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(&pw, &phc));
        assert!(!verify(&SecretString::new("another passphrase!".into()), &phc));
        assert!(!verify(&pw, decoy_hash()));
        // The decoy must parse, or unknown users would be answered faster than known ones.
        assert!(PasswordHash::new(decoy_hash()).is_ok());
        assert!(!verify(&pw, "not a hash"));
    }
}
