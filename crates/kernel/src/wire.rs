//! Reading numbers as JSON clients write them: a whole number may arrive as `30` or `30.0`
//! (JSON Schema's `integer` admits both, and some generators and languages send the second).

use serde::Deserialize;
use serde::de::{Deserializer, Error};

/// A whole number, written with or without a zero fraction; anything else is refused.
pub fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    whole(&n).ok_or_else(|| D::Error::custom(format!("{n} is not a whole number")))
}

/// [`whole_number`] for an optional field (absent or null is `None`).
pub fn optional_whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole(&n).map(Some).ok_or_else(|| D::Error::custom(format!("{n} is not a whole number"))),
    }
}

/// A text people typed, trimmed, when its length in characters is from `min` to `max`;
/// otherwise the reason, for the caller's field error.
pub fn text_within(text: &str, min: usize, max: usize) -> Result<String, String> {
    let text = text.trim();
    let n = text.chars().count();
    if n < min || n > max {
        return Err(format!("between {min} and {max} characters"));
    }
    Ok(text.to_string())
}

/// Gives enums deriving strum's `IntoStaticStr` and `EnumString` their wire name
/// (`as_str`) and a `TryFrom<String>` through which stored values are read back, so that a
/// value that is not a variant is an error rather than a default.
#[macro_export]
macro_rules! wire_name {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        impl TryFrom<String> for $t {
            type Error = ::strum::ParseError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    )*};
}

/// Declares a vocabulary: an enum of unit variants stored and sent by its snake_case wire
/// name (serde and strum agree on it), read back through `TryFrom<String>` ([`wire_name!`]),
/// listed by `VariantArray` and described in the API (`utoipa::ToSchema`). What comes before
/// `enum` (docs, further derives, `#[schema(as = …)]`) is kept. The crate using it depends on
/// serde, strum and utoipa.
#[macro_export]
macro_rules! vocabulary {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),* $(,)? }) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::utoipa::ToSchema,
            ::strum::EnumString,
            ::strum::IntoStaticStr,
            ::strum::VariantArray
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        $(#[$meta])*
        $vis enum $name { $($(#[$vmeta])* $variant),* }
        $crate::wire_name!($name);
    };
}

fn whole(n: &serde_json::Number) -> Option<i64> {
    // Within ±2^53 a float holds every whole number exactly, so the conversion loses nothing.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT).map(|f| f as i64))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Days {
        #[serde(deserialize_with = "super::whole_number")]
        days: i64,
        #[serde(default, deserialize_with = "super::optional_whole_number")]
        rate: Option<i64>,
    }

    #[test]
    fn whole_numbers_come_with_or_without_a_zero_fraction() {
        let d: Days = serde_json::from_str(r#"{"days": 30.0, "rate": 600}"#).unwrap();
        assert_eq!((d.days, d.rate), (30, Some(600)));
        let d: Days = serde_json::from_str(r#"{"days": -2, "rate": null}"#).unwrap();
        assert_eq!((d.days, d.rate), (-2, None));
        let d: Days = serde_json::from_str(r#"{"days": 1e2}"#).unwrap();
        assert_eq!((d.days, d.rate), (100, None));
        for bad in [r#"{"days": 30.5}"#, r#"{"days": "30"}"#, r#"{"days": 1e300}"#, r#"{"days": 1, "rate": 0.1}"#] {
            assert!(serde_json::from_str::<Days>(bad).is_err(), "{bad}");
        }
    }
}
