//! The data an app keeps in a session (a cart, a form's progress, a preference): one JSON
//! object per session, at most [`MAX_DATA_BYTES`] as compact text, changed by replacing it or
//! by a JSON Merge Patch (RFC 7396). Every write makes a new version, and each version of each
//! session has its own [`DataTag`], so writers that race are told apart: a write names the
//! version it read, and the store applies it only if that is still the current one.
//!
//! The data belongs to the one session. It is read and written only through the session's own
//! credential while the session is live, ends with it, and never leaves this module's types
//! except as the caller's answer: it is in no token, log line, audit event, profile or check.

use std::fmt;

use serde_json::Value;

use super::{Caller, SessionId};
use crate::error::AuthError;
use crate::latchkey::Latchkey;
use crate::secret::b64url;
use crate::store::StoreError;

/// The most a session's data may take as compact JSON text (UTF-8, no insignificant
/// whitespace), in bytes.
pub const MAX_DATA_BYTES: usize = 16_384;

/// How often a write that keeps losing to concurrent writers reads and tries again before it
/// gives up. Each loss means another write landed, so only sustained contention on one
/// session's data gets this far.
const MAX_WRITE_ATTEMPTS: usize = 64;

/// A session's data as a store keeps it: the compact JSON text of an object, and how many
/// writes made it (0: never written, and the data is `{}`).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredData {
    /// Successful writes so far.
    pub version: u64,
    /// The object, as compact JSON text.
    pub json: String,
}

impl StoredData {
    /// The data of a session nobody has written to: `{}` at version 0.
    pub fn empty() -> Self {
        Self { version: 0, json: "{}".to_owned() }
    }
}

// The data is the app's and may be personal: debug output shows only its shape.
impl fmt::Debug for StoredData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredData").field("version", &self.version).field("bytes", &self.json.len()).finish()
    }
}

/// The outcome of a store's compare-and-set write of session data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataWrite {
    /// The data moved from the expected version to the next one.
    Written,
    /// Another write came first, or the session is revoked or gone: read again and decide.
    Lost,
}

/// The strong entity tag of one version of one session's data: the same on every instance,
/// and different for every version and every session (so a tag kept from another session, or
/// from before a logout, never matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTag(String);

impl DataTag {
    /// The tag of `version` of `session`'s data.
    pub fn of(session: SessionId, version: u64) -> Self {
        let mut input = Vec::with_capacity(48);
        input.extend_from_slice(b"latchkey session data\0");
        input.extend_from_slice(session.as_uuid().as_bytes());
        input.extend_from_slice(&version.to_be_bytes());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
        Self(b64url(&digest.as_ref()[..15]))
    }

    /// The opaque tag, without the quotes HTTP puts around it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A session's data as its caller gets it: the object and the tag of its version.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionData {
    /// The object, as compact JSON text.
    pub json: String,
    /// Its version's tag.
    pub tag: DataTag,
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionData").field("tag", &self.tag).field("bytes", &self.json.len()).finish()
    }
}

/// Which versions a write may change (HTTP's `If-Match`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// No condition: the write applies to whatever is current.
    #[default]
    None,
    /// Any current version (`*`: the data always exists, `{}` at first).
    AnyVersion,
    /// One of these tags must name the current version. Empty matches nothing.
    OneOf(Vec<String>),
}

impl Precondition {
    /// Whether the version `current` names passes the condition.
    pub fn allows(&self, current: &DataTag) -> bool {
        match self {
            Precondition::None | Precondition::AnyVersion => true,
            Precondition::OneOf(tags) => tags.iter().any(|tag| tag == current.as_str()),
        }
    }
}

/// A change to a session's data.
#[derive(Clone)]
pub enum DataChange {
    /// The new data, whole.
    Replace(Value),
    /// A JSON Merge Patch (RFC 7396) to apply to the current data.
    MergePatch(Value),
}

impl fmt::Debug for DataChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataChange::Replace(_) => "Replace(..)",
            DataChange::MergePatch(_) => "MergePatch(..)",
        })
    }
}

impl DataChange {
    /// The data after this change to `current` (compact JSON text), if it is an object that
    /// fits.
    pub fn apply(&self, current: &str) -> Result<String, DataError> {
        let changed = match self {
            DataChange::Replace(value) => value.clone(),
            DataChange::MergePatch(patch) => {
                let mut document: Value = serde_json::from_str(current).map_err(|_| DataError::Unreadable)?;
                json_patch::merge(&mut document, patch);
                document
            }
        };
        if !changed.is_object() {
            return Err(DataError::NotAnObject);
        }
        let json = serde_json::to_string(&changed).map_err(|_| DataError::Unreadable)?;
        if json.len() > MAX_DATA_BYTES {
            return Err(DataError::TooLarge { bytes: json.len() });
        }
        Ok(json)
    }
}

/// Why a change to a session's data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// The new data (a replacement, or a patch's result) is not a JSON object.
    #[error("the session's data must be a JSON object")]
    NotAnObject,
    /// The new data is larger than [`MAX_DATA_BYTES`] as compact JSON.
    #[error("the session's data would take {bytes} bytes as compact JSON; the limit is 16384")]
    TooLarge {
        /// Its size as compact JSON text.
        bytes: usize,
    },
    /// The current version is not one the precondition names.
    #[error("the session's data has changed since the version If-Match names")]
    PreconditionFailed,
    /// Concurrent writes kept changing the data while this one tried to apply.
    #[error("the session's data kept changing under concurrent writes; try again")]
    Contended,
    /// The stored data is not a JSON object latchkey wrote.
    #[error("the stored session data is not readable")]
    Unreadable,
}

impl Latchkey {
    /// The caller's session data, or `None` when the session is no longer live (revoked,
    /// expired, or not the caller's). Always read from the store, so that every instance sees
    /// the last write.
    pub async fn session_data(&self, caller: &Caller) -> Result<Option<SessionData>, AuthError> {
        Ok(self
            .live_data(caller)
            .await?
            .map(|stored| SessionData { tag: DataTag::of(caller.session_id, stored.version), json: stored.json }))
    }

    /// Applies `change` to the caller's session data if `precondition` allows the current
    /// version; `None` when the session is no longer live. A write that loses to a concurrent
    /// one reads again and re-applies, so concurrent patches of different keys all land; with
    /// an `If-Match` precondition the re-read finds the other write's version and fails.
    pub async fn change_session_data(
        &self,
        caller: &Caller,
        precondition: &Precondition,
        change: &DataChange,
    ) -> Result<Option<SessionData>, AuthError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let Some(current) = self.live_data(caller).await? else { return Ok(None) };
            if !precondition.allows(&DataTag::of(caller.session_id, current.version)) {
                return Err(DataError::PreconditionFailed.into());
            }
            let json = change.apply(&current.json).map_err(|err| match err {
                DataError::Unreadable => AuthError::Store(unreadable(caller.session_id)),
                other => AuthError::Data(other),
            })?;
            let sessions = &self.inner.stores.sessions;
            if sessions.write_data(caller.session_id, current.version, &json).await? == DataWrite::Written {
                let tag = DataTag::of(caller.session_id, current.version + 1);
                return Ok(Some(SessionData { json, tag }));
            }
            tokio::task::yield_now().await;
        }
        Err(DataError::Contended.into())
    }

    /// The stored data of the caller's session while it is live, checked like a profile: the
    /// denylist first, then the session record's owner and expiry.
    async fn live_data(&self, caller: &Caller) -> Result<Option<StoredData>, AuthError> {
        let now = self.now();
        if self.inner.revocations.denylist.denies(caller.session_id, now) {
            return Ok(None);
        }
        let Some((session, data)) = self.inner.stores.sessions.get_with_data(caller.session_id).await? else {
            return Ok(None);
        };
        Ok((session.user_id == caller.user_id && session.is_live(now)).then_some(data))
    }
}

fn unreadable(session: SessionId) -> StoreError {
    StoreError::Corrupt(format!("the data of session {session} is not a JSON object"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_merge_patch_sets_replaces_and_removes_members_recursively() {
        let patch = DataChange::MergePatch(json!({"cart": {"apple": 2, "pear": null}, "step": 3}));
        let after = patch.apply(r#"{"cart":{"apple":1,"pear":4,"fig":1},"theme":"dark"}"#);
        assert_eq!(after.as_deref(), Ok(r#"{"cart":{"apple":2,"fig":1},"step":3,"theme":"dark"}"#));
    }

    #[test]
    fn only_objects_are_data() {
        for value in [json!([1]), json!("text"), json!(3), json!(null), json!(true)] {
            assert_eq!(DataChange::Replace(value.clone()).apply("{}"), Err(DataError::NotAnObject));
            assert_eq!(DataChange::MergePatch(value).apply(r#"{"a":1}"#), Err(DataError::NotAnObject));
        }
    }

    #[test]
    fn the_limit_counts_compact_utf8_bytes() {
        // "k" and the quotes, colon and braces take 8 bytes around the string.
        let fits = json!({ "k": "é".repeat((MAX_DATA_BYTES - 8) / 2) });
        let json = DataChange::Replace(fits).apply("{}").unwrap_or_default();
        assert_eq!(json.len(), MAX_DATA_BYTES);
        let over = json!({ "k": format!("{}x", "é".repeat((MAX_DATA_BYTES - 8) / 2)) });
        assert_eq!(DataChange::Replace(over).apply("{}"), Err(DataError::TooLarge { bytes: MAX_DATA_BYTES + 1 }));
    }

    #[test]
    fn tags_differ_by_version_and_by_session_and_match_only_as_named() {
        let (a, b) = (SessionId::generate(), SessionId::generate());
        assert_eq!(DataTag::of(a, 3), DataTag::of(a, 3));
        assert_ne!(DataTag::of(a, 3), DataTag::of(a, 4));
        assert_ne!(DataTag::of(a, 3), DataTag::of(b, 3));
        let current = DataTag::of(a, 3);
        assert!(Precondition::None.allows(&current));
        assert!(Precondition::AnyVersion.allows(&current));
        assert!(Precondition::OneOf(vec!["x".into(), current.as_str().into()]).allows(&current));
        assert!(!Precondition::OneOf(vec![DataTag::of(a, 2).as_str().into()]).allows(&current));
        assert!(!Precondition::OneOf(Vec::new()).allows(&current));
    }

    #[test]
    fn debug_output_never_shows_the_data() {
        let stored = StoredData { version: 2, json: r#"{"secret":"hunter2"}"#.into() };
        let shown = format!("{stored:?} {:?}", DataChange::Replace(json!({"secret": "hunter2"})));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
