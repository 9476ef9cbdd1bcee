//! lumyx-keys
