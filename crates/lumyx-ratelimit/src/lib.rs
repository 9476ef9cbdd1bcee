//! lumyx-ratelimit
