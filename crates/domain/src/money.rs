//! Money is an integer number of KRW; a price is money within the marketplace's bounds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount in KRW. Never a float: every sum in the ledger must be exact.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    /// Zero KRW.
    pub const ZERO: Money = Money(0);

    /// Wraps a raw KRW amount (may be zero or negative, e.g. in a balance).
    pub const fn krw(amount: i64) -> Self {
        Money(amount)
    }

    /// The amount in KRW.
    pub const fn as_krw(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} KRW", self.0)
    }
}

/// A listing or offer price: 1 ≤ price ≤ 1,000,000,000 KRW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Price(Money);

/// A price outside the allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("price must be between {min} and {max} KRW, got {got}", min = Price::MIN, max = Price::MAX)]
pub struct PriceOutOfRange {
    /// The refused amount.
    pub got: i64,
}

impl Price {
    /// The smallest accepted price in KRW.
    pub const MIN: i64 = 1;
    /// The largest accepted price in KRW.
    pub const MAX: i64 = 1_000_000_000;

    /// Parses a raw KRW amount at the edge.
    pub fn parse(amount: i64) -> Result<Self, PriceOutOfRange> {
        if (Self::MIN..=Self::MAX).contains(&amount) {
            Ok(Price(Money(amount)))
        } else {
            Err(PriceOutOfRange { got: amount })
        }
    }

    /// The price as money.
    pub const fn money(self) -> Money {
        self.0
    }

    /// The price in KRW.
    pub const fn as_krw(self) -> i64 {
        self.0 .0
    }
}

impl TryFrom<i64> for Price {
    type Error = PriceOutOfRange;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Price::parse(value)
    }
}

impl From<Price> for i64 {
    fn from(price: Price) -> i64 {
        price.as_krw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_must_be_within_bounds() {
        assert!(Price::parse(0).is_err());
        assert!(Price::parse(-5).is_err());
        assert!(Price::parse(1_000_000_001).is_err());
        assert_eq!(Price::parse(1).map(Price::as_krw), Ok(1));
        assert_eq!(Price::parse(Price::MAX).map(Price::as_krw), Ok(Price::MAX));
    }

    #[test]
    fn a_price_refuses_to_deserialize_out_of_range() {
        assert!(serde_json::from_str::<Price>("0").is_err());
        assert_eq!(
            serde_json::from_str::<Price>("1500").ok(),
            Price::parse(1500).ok()
        );
    }
}
