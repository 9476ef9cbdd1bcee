//! Serde through the text form, for the public types that have one.
//!
//! Digests, ids and hints are stored and sent as the same text their
//! `Display` writes and their `FromStr` reads, so one macro serves them all.

/// Implements `Serialize` with `Display` and `Deserialize` with `FromStr`.
macro_rules! serde_via_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use serde_via_text;
