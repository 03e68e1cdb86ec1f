//! Durations as a spec and the command line write them (`30s`, `1m30s`, `250ms`): one reader
//! for every duration field and flag, and the serde helpers the spec's types use.

use std::time::Duration;

/// A duration a user wrote that slogate cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a duration; write it like 30s, 2m or 1h30m", crate::quote::quote(.text))]
pub struct DurationError {
    /// What was written.
    pub text: String,
}

/// Reads a duration such as `30s`, `2m`, `1h30m` or `250ms`: the one reader behind every
/// duration field of the spec and every duration flag, so they all explain the same way.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|_| DurationError {
        text: text.to_owned(),
    })
}

/// Serde helpers for durations written as `30s`, `1m`, `250ms`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Writes a duration in humantime form.
    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*value))
    }

    /// Reads a duration in humantime form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_str(DurationVisitor)
    }

    /// Accepts only strings, and says what a duration looks like when given anything else.
    pub(super) struct DurationVisitor;

    impl serde::de::Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(super::DURATION_EXPECTED)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            super::parse_duration(text).map_err(E::custom)
        }
    }
}

/// What serde's messages say a duration field expects; the spec reader recognises it.
const DURATION_EXPECTED: &str = "a duration like 30s, 2m or 1h30m";

/// Serde helpers for optional durations written as `30s`, `1m`, `250ms`.
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Writes an optional duration in humantime form.
    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional duration in humantime form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        struct OptVisitor;
        impl<'de> serde::de::Visitor<'de> for OptVisitor {
            type Value = Option<Duration>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(super::DURATION_EXPECTED)
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                super::duration::deserialize(d).map(Some)
            }
        }
        d.deserialize_option(OptVisitor)
    }
}
