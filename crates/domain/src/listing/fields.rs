//! The validated text fields of a listing, parsed once at the edge.

use serde::{Deserialize, Serialize};

/// Why a field was refused; the message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct InvalidField {
    /// The field's name as clients send it.
    pub field: &'static str,
    /// The rule it broke.
    pub rule: String,
}

fn bounded(field: &'static str, raw: &str, min: usize, max: usize) -> Result<String, InvalidField> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars < min || chars > max {
        return Err(InvalidField {
            field,
            rule: if min > 0 {
                format!("must be {min} to {max} characters (after trimming), got {chars}")
            } else {
                format!("must be at most {max} characters, got {chars}")
            },
        });
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(InvalidField {
            field,
            rule: "must not contain control characters".into(),
        });
    }
    Ok(trimmed.to_owned())
}

macro_rules! text_field {
    ($(#[$doc:meta])* $name:ident, $field:literal, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The shortest accepted length in characters.
            pub const MIN_CHARS: usize = $min;
            /// The longest accepted length in characters.
            pub const MAX_CHARS: usize = $max;

            /// Parses raw input: trimmed, length-checked, no control characters.
            pub fn parse(raw: &str) -> Result<Self, InvalidField> {
                bounded($field, raw, $min, $max).map(Self)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_field!(
    /// A listing's title: 1 to 100 characters.
    ListingTitle, "title", 1, 100
);
text_field!(
    /// A listing's description: at most 5,000 characters.
    Description, "description", 0, 5_000
);
text_field!(
    /// A listing's category: 1 to 50 characters.
    Category, "category", 1, 50
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_trimmed_and_bounded() {
        assert_eq!(
            ListingTitle::parse("  Desk lamp ").map(|t| t.as_str().to_owned()),
            Ok("Desk lamp".into())
        );
        assert!(ListingTitle::parse("   ").is_err());
        assert!(ListingTitle::parse(&"가".repeat(100)).is_ok());
        assert!(ListingTitle::parse(&"가".repeat(101)).is_err());
        assert!(ListingTitle::parse("bell\u{7}").is_err());
    }

    #[test]
    fn a_description_may_be_empty_but_not_too_long() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"x".repeat(5_000)).is_ok());
        assert!(Description::parse(&"x".repeat(5_001)).is_err());
    }
}
