//! The messages the sign-in page shows after a redirect, and the way out of a session that
//! ended: named in the page's `notice` parameter, never free text, so a link cannot put words
//! in latchkey's mouth.

use axum::response::{IntoResponse, Redirect, Response};

use crate::state::AppState;

/// A message the sign-in page shows after a redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    /// After sign-up.
    Created,
    /// After "sign out".
    SignedOut,
    /// After "log out everywhere".
    SignedOutEverywhere,
    /// The browser's session was revoked or expired.
    SessionEnded,
    /// An app asks for the password again (`prompt=login`, `max_age`).
    Reauthenticate,
}

impl Notice {
    const ALL: [Self; 5] =
        [Self::Created, Self::SignedOut, Self::SignedOutEverywhere, Self::SessionEnded, Self::Reauthenticate];

    /// The parameter's value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::SignedOut => "signed_out",
            Self::SignedOutEverywhere => "signed_out_everywhere",
            Self::SessionEnded => "session_ended",
            Self::Reauthenticate => "reauthenticate",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|notice| notice.as_str() == value)
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Created => "Your account is ready. Sign in to start.",
            Self::SignedOut => "You are signed out on this device.",
            Self::SignedOutEverywhere => "You are signed out on every device.",
            Self::SessionEnded => "Your session on this device has ended. Sign in again.",
            Self::Reauthenticate => "The app you came from asks you to confirm your password.",
        }
    }
}

/// After a session of this browser ended: its cookies cleared, and to the sign-in page, which
/// says why.
pub(crate) fn signed_out(state: &AppState, notice: Notice) -> Response {
    let target = format!("/login?notice={}", notice.as_str());
    (state.cookies.removals(), Redirect::to(&target)).into_response()
}
