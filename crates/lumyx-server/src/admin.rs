//! The admin token: what the key dashboard API (`/v1/keys`) and `/metrics`
//! ask for, compared in constant time, never printed by `Debug`.

use std::fmt;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lumyx_api_types::ApiError;
use lumyx_gate::{HeaderProblem, bearer_token};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::Failure;

/// The secret of the key dashboard API and `/metrics`: sent as
/// `Authorization: Bearer <token>`.
///
/// It is compared in constant time (SHA-256 digests of the presented and
/// the expected token, so not even their lengths are told apart), its
/// memory is zeroized on drop, and its `Debug` shows nothing of it.
///
/// ```
/// use lumyx_server::AdminToken;
///
/// let token = AdminToken::generate();
/// assert!(token.expose_secret().starts_with("lumyx_admin_"));
/// assert!(token.matches(token.expose_secret().as_bytes()));
/// assert!(!token.matches(b"lumyx_admin_guess"));
/// assert_eq!(format!("{token:?}"), "AdminToken(..)");
/// assert!(AdminToken::new("too short").is_err());
/// ```
#[derive(Clone)]
pub struct AdminToken {
    token: Zeroizing<String>,
    digest: TokenDigest,
}

/// The SHA-256 digest of an admin token: all a server needs to check one,
/// and what instances sharing a Redis agree on when the first of them made
/// the token up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenDigest(pub(crate) [u8; 32]);

impl TokenDigest {
    /// Whether `presented` is the token of this digest, in time that does
    /// not depend on where they differ.
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        presented.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

impl AdminToken {
    /// The fewest characters a token may have.
    pub const MIN_LEN: usize = 16;

    /// A token of the caller's choosing: at least [`MIN_LEN`](Self::MIN_LEN)
    /// visible ASCII characters, no spaces.
    ///
    /// # Errors
    /// What is wrong with it (never repeating it).
    pub fn new(token: impl Into<String>) -> Result<AdminToken, String> {
        let token = Zeroizing::new(token.into());
        if token.len() < Self::MIN_LEN {
            return Err(format!(
                "an admin token has at least {} characters, this one {}",
                Self::MIN_LEN,
                token.chars().count()
            ));
        }
        if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(
                "an admin token is visible ASCII characters only, without spaces".to_owned(),
            );
        }
        let digest = TokenDigest(Sha256::digest(token.as_bytes()).into());
        Ok(AdminToken { token, digest })
    }

    /// A new random token: `lumyx_admin_` and 32 hex digits (128 bits from
    /// the operating system).
    ///
    /// # Panics
    /// When the operating system has no randomness to give.
    pub fn generate() -> AdminToken {
        let mut bytes = Zeroizing::new([0u8; 16]);
        getrandom::fill(bytes.as_mut()).expect("the operating system's random numbers");
        AdminToken::new(format!("lumyx_admin_{}", hex::encode(bytes.as_ref())))
            .expect("a generated token is well-formed")
    }

    /// The token, to show to the operator once. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.token
    }

    /// Whether `presented` is this token, in time that does not depend on
    /// where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.digest.matches(presented)
    }

    /// The token's digest.
    pub(crate) fn digest(&self) -> TokenDigest {
        self.digest
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Middleware of the admin routes: a request without the admin token is
/// answered 401 in the envelope, and the route never runs.
pub(crate) async fn require_admin(
    State(token): State<TokenDigest>,
    request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    let refusal = match bearer_token(header) {
        Ok(presented) if token.matches(presented.as_bytes()) => None,
        Ok(_) => Some(ApiError::invalid_api_key().with_message(
            "Incorrect admin token provided. The key dashboard API takes the server's admin \
             token (LUMYX_ADMIN_TOKEN), not an API key.",
        )),
        Err(HeaderProblem::Missing) => Some(ApiError::missing_api_key().with_message(
            "You didn't provide the admin token. Send it as 'Authorization: Bearer ADMIN_TOKEN'.",
        )),
        Err(HeaderProblem::Malformed) => Some(ApiError::invalid_authorization_header()),
    };
    match refusal {
        None => next.run(request).await,
        Some(error) => Failure(error).into_response(),
    }
}
