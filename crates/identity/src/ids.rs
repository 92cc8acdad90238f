//! Chinese identifiers: the 18-digit resident ID number (GB 11643-1999) and the 18-character
//! unified social credit code (GB 32100-2015).

use chrono::NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be 18 characters")]
    Length,
    #[error("contains a character that is not allowed")]
    Charset,
    #[error("the birth date is not a real date")]
    BirthDate,
    #[error("the check character does not match")]
    CheckDigit,
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The GB 11643 check character for the first 17 digits.
pub fn resident_id_check(first17: &str) -> Option<char> {
    let digits: Vec<u32> = first17.chars().map(|c| c.to_digit(10)).collect::<Option<_>>()?;
    if digits.len() != 17 {
        return None;
    }
    let sum: u32 = digits.iter().zip(ID_WEIGHTS).map(|(d, w)| d * w).sum();
    ID_CHECK.get((sum % 11) as usize).map(|b| *b as char)
}

/// Validates an 18-digit resident ID number; returns it normalised (upper-case X).
pub fn validate_resident_id(id: &str) -> Result<String, IdError> {
    let id = id.trim().to_ascii_uppercase();
    if id.chars().count() != 18 {
        return Err(IdError::Length);
    }
    if !id.is_ascii() {
        return Err(IdError::Charset);
    }
    let (body, check) = id.split_at(17);
    if !body.bytes().all(|b| b.is_ascii_digit()) || !(check == "X" || check.bytes().all(|b| b.is_ascii_digit())) {
        return Err(IdError::Charset);
    }
    let birth = body.get(6..14).ok_or(IdError::Length)?;
    NaiveDate::parse_from_str(birth, "%Y%m%d").map_err(|_| IdError::BirthDate)?;
    match resident_id_check(body) {
        Some(c) if check.starts_with(c) => Ok(id),
        _ => Err(IdError::CheckDigit),
    }
}

/// Date of birth and sex from a resident ID number: digits 7–14 are the birth date; the 17th
/// is odd for men, even for women (GB/T 2261.1 codes "1" and "2").
pub fn birth_and_sex(id: &str) -> Option<(NaiveDate, &'static str)> {
    let birth = NaiveDate::parse_from_str(id.get(6..14)?, "%Y%m%d").ok()?;
    let digit = id.chars().nth(16)?.to_digit(10)?;
    Some((birth, if digit % 2 == 1 { "1" } else { "2" }))
}

/// Age in whole years on `day`.
pub fn age_on(birth: NaiveDate, day: NaiveDate) -> i64 {
    use chrono::Datelike;
    let mut age = i64::from(day.year() - birth.year());
    if (day.month(), day.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age.max(0)
}

/// The 31 characters of GB 32100 (no I, O, S, V, Z).
const USCC_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

fn uscc_value(c: char) -> Option<u32> {
    USCC_CHARS.find(c).map(|i| i as u32)
}

/// The GB 32100 check character for the first 17 characters.
pub fn credit_code_check(first17: &str) -> Option<char> {
    let values: Vec<u32> = first17.chars().map(uscc_value).collect::<Option<_>>()?;
    if values.len() != 17 {
        return None;
    }
    let sum: u32 = values.iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    USCC_CHARS.chars().nth(check as usize)
}

/// Validates an 18-character unified social credit code; returns it upper-cased.
pub fn validate_credit_code(code: &str) -> Result<String, IdError> {
    let code = code.trim().to_ascii_uppercase();
    if code.chars().count() != 18 {
        return Err(IdError::Length);
    }
    if !code.chars().all(|c| uscc_value(c).is_some()) {
        return Err(IdError::Charset);
    }
    let (body, check) = code.split_at(17);
    match credit_code_check(body) {
        Some(c) if check.starts_with(c) => Ok(code),
        _ => Err(IdError::CheckDigit),
    }
}

/// The GB 11714 check character of an organisation code's first 8 characters (digits and
/// upper-case letters), used inside credit codes.
pub fn organisation_code_check(first8: &str) -> Option<char> {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let values: Vec<u32> = first8.chars().map(|c| c.to_digit(36)).collect::<Option<_>>()?;
    if values.len() != 8 {
        return None;
    }
    let sum: u32 = values.iter().zip(W).map(|(v, w)| v * w).sum();
    match 11 - sum % 11 {
        10 => Some('X'),
        11 => Some('0'),
        n => char::from_digit(n, 10),
    }
}

/// Validates a system client name in the GovStack Information Mediator form
/// `INSTANCE/CLASS/MEMBER/SUBSYSTEM`.
pub fn validate_client_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty() && p.len() <= 64 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

#[cfg(test)]
mod tests {

    #[test]
    fn birth_sex_and_age_come_from_the_id_number() {
        let (birth, sex) = birth_and_sex("11010519491231002X").unwrap();
        assert_eq!(birth.to_string(), "1949-12-31");
        assert_eq!(sex, "2");
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(age_on(birth, day("2026-12-30")), 76);
        assert_eq!(age_on(birth, day("2026-12-31")), 77);
        assert_eq!(birth_and_sex("short"), None);
    }

    use super::*;

    #[test]
    fn resident_ids_known_values() {
        // The example from GB 11643 and other published valid numbers.
        assert_eq!(validate_resident_id("11010519491231002X"), Ok("11010519491231002X".into()));
        assert_eq!(validate_resident_id("11010519491231002x"), Ok("11010519491231002X".into()));
        assert_eq!(validate_resident_id("440524188001010014"), Ok("440524188001010014".into()));
        assert_eq!(validate_resident_id("110105194912310021"), Err(IdError::CheckDigit));
        assert_eq!(validate_resident_id("440524188001010015"), Err(IdError::CheckDigit));
        assert_eq!(validate_resident_id("11010519491231002"), Err(IdError::Length));
        assert_eq!(validate_resident_id("1101051949123100AX"), Err(IdError::Charset));
        assert_eq!(validate_resident_id("110105194913310029"), Err(IdError::BirthDate));
        assert_eq!(validate_resident_id("一一〇一〇五一九四九一二三一〇〇二X"), Err(IdError::Charset));
    }

    #[test]
    fn credit_codes_known_values() {
        assert_eq!(validate_credit_code("91350100M000100Y43"), Ok("91350100M000100Y43".into()));
        assert_eq!(validate_credit_code("91350100m000100y43"), Ok("91350100M000100Y43".into()));
        assert_eq!(validate_credit_code("91350100M000100Y44"), Err(IdError::CheckDigit));
        assert_eq!(validate_credit_code("91350100M000100Y4"), Err(IdError::Length));
        // I, O, S, V and Z are never used
        assert_eq!(validate_credit_code("91350100M000100O43"), Err(IdError::Charset));
    }

    #[test]
    fn organisation_code_check_known_value() {
        // 组织机构代码 D2143569-X, the example of GB 11714.
        assert_eq!(organisation_code_check("D2143569"), Some('X'));
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let valid = "11010519491231002X";
        for i in 0..17 {
            for d in '0'..='9' {
                let mut chars: Vec<char> = valid.chars().collect();
                if chars[i] == d {
                    continue;
                }
                chars[i] = d;
                let s: String = chars.into_iter().collect();
                assert!(validate_resident_id(&s).is_err(), "{s} accepted");
            }
        }
    }

    #[test]
    fn client_names() {
        assert!(validate_client_name("CN-YL/GOV/DEPT-PSB/population"));
        assert!(!validate_client_name("CN-YL/GOV/DEPT-PSB"));
        assert!(!validate_client_name("CN-YL/GOV//population"));
        assert!(!validate_client_name("CN YL/GOV/X/Y"));
    }
}
