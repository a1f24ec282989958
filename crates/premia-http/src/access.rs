//! Who may read what: the role of a request's bearer token ([`crate::auth`] keeps the tokens),
//! and the checks the routes make with it.

use axum::http::{header, HeaderMap, StatusCode};

use crate::auth::Role;
use crate::errors::{forbidden, ApiError};
use crate::state::ApiState;

impl ApiState {
    /// The role of the request's bearer token, or 401.
    pub(crate) fn role(&self, headers: &HeaderMap) -> Result<&Role, ApiError> {
        self.caller(headers).map(|(_, role)| role)
    }

    /// The request's bearer token as its place among the configured tokens, with its role; 401
    /// without one of them.
    pub(crate) fn caller(&self, headers: &HeaderMap) -> Result<(usize, &Role), ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(token) = token else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this route needs a bearer token: send the header Authorization: Bearer TOKEN",
            ));
        };
        // Never log the token itself, nor its hash.
        self.tokens().find(token).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the bearer token is not one of the configured tokens; check it, or ask an administrator to add its SHA-256 to [[http.tokens]]",
            )
        })
    }

    /// The role of a token that reads something: every role but the publisher's.
    pub(crate) fn reader(&self, headers: &HeaderMap) -> Result<Role, ApiError> {
        match self.role(headers)? {
            Role::Publisher => Err(forbidden("the publisher role only posts events; it reads nothing")),
            role => Ok(role.clone()),
        }
    }

    pub(crate) fn require_everything(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let role = self.role(headers)?;
        if role.reads_everything() {
            Ok(())
        } else {
            Err(forbidden("only the admin and auditor roles read this; a manager reads /v1/managers/{id}/..."))
        }
    }

    pub(crate) fn require_manager(&self, headers: &HeaderMap, manager: &str) -> Result<(), ApiError> {
        let role = self.role(headers)?;
        if role.reads_manager(manager) {
            Ok(())
        } else {
            Err(forbidden(&format!("this token's role may not read manager {manager}'s statements and entries")))
        }
    }
}
