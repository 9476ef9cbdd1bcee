//! lumyx-api-types
