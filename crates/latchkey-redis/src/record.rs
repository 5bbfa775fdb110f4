//! A session packed into one compact binary value.
//!
//! The fields scripts change sit at fixed offsets, as little-endian 64-bit integers, so the
//! Lua scripts read and rewrite them in place (`struct.unpack('<i8', …)`); times are
//! microseconds since the epoch, well inside the 2^53 a Lua number holds exactly.
//!
//! ```text
//! 0  format (1)        1  kind (0 cookie, 1 token)   2  flags (1 rotated, 2 revoked,
//!                                                        4 user agent, 8 ip as text,
//!                                                        16 ip as 4 or 16 bytes,
//!                                                        64 an app's session)
//! 3  last seen         11 refresh counter             19 created
//! 27 absolute end      35 idle timeout                43 user id (16 bytes)
//! 59 rotated at, if flag 1; then revoked at, if flag 2
//!    digest length (0 or 32), digest; ip length, ip;
//!    if flag 64: the SSO session's id (16), client id length (1), client id, scope length (1),
//!    scope (space-separated);
//!    the packed user agent
//! if flag 32, a trailer: the session's data (packed by [`pack_data`]), its version (8), its
//!    length (4)
//! ```
//!
//! Most sessions are never rotated or revoked, so those two times take room only once set;
//! the scripts insert them in place. The data sits at the end, found from the end, so the
//! scripts that move fields or insert times carry it along untouched, and a session without
//! data pays nothing for it. Every byte counts: Redis holds a million sessions.

use std::cell::RefCell;
use std::net::IpAddr;

use latchkey_core::accounts::UserId;
use latchkey_core::clients::ClientId;
use latchkey_core::secret::TokenDigest;
use latchkey_core::sessions::{AppSession, ClientInfo, MAX_DATA_BYTES, Session, SessionId, SessionKind, StoredData};
use latchkey_core::store::StoreError;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::user_agent;

const FORMAT: u8 = 1;

const ROTATED: u8 = 1;
const REVOKED: u8 = 2;
const HAS_USER_AGENT: u8 = 4;
const IP_TEXT: u8 = 8;
const IP_BINARY: u8 = 16;
const HAS_DATA: u8 = 32;
const APP: u8 = 64;

/// The bytes after the data: its version (8) and its length (4).
const DATA_TRAILER: usize = 12;

const LAST_SEEN: usize = 3;
const COUNTER: usize = 11;
const CREATED: usize = 19;
const ABSOLUTE: usize = 27;
const IDLE: usize = 35;
const USER: usize = 43;
const OPTIONAL: usize = 59;

/// Microseconds since the epoch, the unit of every stored time.
pub fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("Redis session record: {what}"))
}

/// Packs `session` (its id is the key, not part of the value).
pub fn encode(session: &Session) -> Vec<u8> {
    let user_agent = session.client.user_agent.as_deref().map(user_agent::pack);
    let ip = session.client.ip.as_deref().map(pack_ip).filter(|(_, ip)| ip.len() <= usize::from(u8::MAX));
    let mut flags = ip.as_ref().map_or(0, |(flag, _)| *flag);
    for (present, flag) in [
        (session.rotated_at.is_some(), ROTATED),
        (session.revoked_at.is_some(), REVOKED),
        (user_agent.is_some(), HAS_USER_AGENT),
        (session.app.is_some(), APP),
    ] {
        if present {
            flags |= flag;
        }
    }
    let mut value = Vec::with_capacity(OPTIONAL + 64 + user_agent.as_ref().map_or(0, Vec::len));
    value.push(FORMAT);
    value.push(match session.kind {
        SessionKind::Cookie => 0,
        SessionKind::Token => 1,
    });
    value.push(flags);
    let counter = i64::try_from(session.refresh_counter).unwrap_or(i64::MAX);
    for number in [
        micros(session.last_seen_at),
        counter,
        micros(session.created_at),
        micros(session.absolute_expires_at),
        i64::try_from(session.idle_timeout.whole_microseconds()).unwrap_or(i64::MAX),
    ] {
        value.extend_from_slice(&number.to_le_bytes());
    }
    value.extend_from_slice(session.user_id.as_uuid().as_bytes());
    for at in [session.rotated_at, session.revoked_at].into_iter().flatten() {
        value.extend_from_slice(&micros(at).to_le_bytes());
    }
    match &session.secret_digest {
        Some(digest) => {
            value.push(32);
            value.extend_from_slice(digest.as_bytes());
        }
        None => value.push(0),
    }
    let ip = ip.map(|(_, ip)| ip).unwrap_or_default();
    // Filtered above to fit.
    value.push(u8::try_from(ip.len()).unwrap_or(0));
    value.extend_from_slice(&ip);
    if let Some(app) = &session.app {
        value.extend_from_slice(app.sso_session.as_uuid().as_bytes());
        // Client ids are at most 64 characters and scopes a few known words.
        for text in [app.client_id.as_str().to_owned(), app.scope()] {
            let text = &text.as_bytes()[..text.len().min(usize::from(u8::MAX))];
            value.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
            value.extend_from_slice(text);
        }
    }
    if let Some(packed) = user_agent {
        value.extend_from_slice(&packed);
    }
    value
}

/// Unpacks a value [`encode`] made for session `id` (and the scripts changed since).
pub fn decode(id: SessionId, value: &[u8]) -> Result<Session, StoreError> {
    decode_record(id, split_data(value)?.0)
}

/// Unpacks a session and its data (`{}` at version 0 when it has none).
pub fn decode_with_data(id: SessionId, value: &[u8]) -> Result<(Session, StoredData), StoreError> {
    let (record, data) = split_data(value)?;
    let data = match data {
        Some((version, json)) => StoredData {
            version: u64::try_from(version).map_err(|_| corrupt("data version"))?,
            json: unpack_data(json)?,
        },
        None => StoredData::empty(),
    };
    Ok((decode_record(id, record)?, data))
}

/// Marks data kept LZ4-compressed: the marker, the text's length (2 bytes) and an LZ4 block.
/// Only read: values written before zstd replaced LZ4 still decode.
const LZ4: u8 = 1;
/// Marks data kept as a zstd frame (which records the text's length). JSON text that is an
/// object starts with `{` instead.
const ZSTD: u8 = 2;
/// zstd's default level: on a few KiB it compresses within a few percent of the highest
/// levels, at a fraction of their time, and a patch pays it on every write.
const ZSTD_LEVEL: i32 = 3;

/// The session data as kept: zstd-compressed when that makes it smaller, else its text.
///
/// Why zstd: Redis memory is the deployment's largest cost, and the data sits in the
/// session's own value, so the allocator rounds the two together up to its next size class
/// (256 bytes apart past 1 KiB). JSON of a cart or a form compresses well under any
/// compressor; text with little repetition (ids, tokens, base64, prose in any script) does
/// not repeat, but its bytes are far from uniform, and only an entropy coder like zstd's
/// gains on it (1 KiB of random base64url: 823 bytes with zstd, none with LZ4).
pub fn pack_data(json: &str) -> Vec<u8> {
    let text = json.as_bytes();
    match with_zstd(|contexts| contexts.compressor.compress(text)) {
        Ok(compressed) if compressed.len() + 1 < text.len() => {
            let mut packed = Vec::with_capacity(compressed.len() + 1);
            packed.push(ZSTD);
            packed.extend_from_slice(&compressed);
            packed
        }
        _ => text.to_vec(),
    }
}

/// One thread's zstd contexts. Making a context allocates and clears its tables, which costs
/// more than compressing a cart (about 25 µs to read 1 KiB with a fresh one), so each thread
/// keeps its pair for the data's every read and write.
struct ZstdContexts {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

thread_local! {
    static ZSTD_CONTEXTS: RefCell<Option<ZstdContexts>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's zstd contexts, made on first use.
fn with_zstd<T>(work: impl FnOnce(&mut ZstdContexts) -> std::io::Result<T>) -> std::io::Result<T> {
    ZSTD_CONTEXTS.with(|cell| {
        let mut contexts = cell.try_borrow_mut().map_err(std::io::Error::other)?;
        let contexts = match &mut *contexts {
            Some(contexts) => contexts,
            empty => empty.insert(ZstdContexts {
                compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
                decompressor: zstd::bulk::Decompressor::new()?,
            }),
        };
        work(contexts)
    })
}

/// The JSON text [`pack_data`] kept (or LZ4 data from before it).
fn unpack_data(packed: &[u8]) -> Result<String, StoreError> {
    let text = match packed.split_first() {
        Some((&ZSTD, frame)) => {
            // The frame records the text's length (`pack_data` always knows it): the buffer is
            // that size, bounded by the data's limit so a damaged or hostile frame cannot make us
            // allocate more, and zstd checks the text against it.
            let len = zstd::zstd_safe::get_frame_content_size(frame)
                .ok()
                .flatten()
                .and_then(|len| usize::try_from(len).ok())
                .filter(|&len| len <= MAX_DATA_BYTES)
                .ok_or_else(|| corrupt("compressed data"))?;
            let text = with_zstd(|contexts| contexts.decompressor.decompress(frame, len))
                .map_err(|_| corrupt("compressed data"))?;
            // zstd reads no frame at all as no text; data is a JSON object, never empty.
            if text.is_empty() {
                return Err(corrupt("compressed data"));
            }
            text
        }
        Some((&LZ4, rest)) => {
            let (len, block) = rest.split_at_checked(2).ok_or_else(|| corrupt("data"))?;
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            let text = lz4_flex::block::decompress(block, len).map_err(|_| corrupt("compressed data"))?;
            if text.len() != len {
                return Err(corrupt("compressed data"));
            }
            text
        }
        _ => packed.to_vec(),
    };
    String::from_utf8(text).map_err(|_| corrupt("data"))
}

/// A session's data as found in its value: its version and its packed bytes.
type PackedData<'a> = (i64, &'a [u8]);

/// Splits the data's trailer off a value: the record, and the data if any.
fn split_data(value: &[u8]) -> Result<(&[u8], Option<PackedData<'_>>), StoreError> {
    if value.len() < 3 || value[2] & HAS_DATA == 0 {
        return Ok((value, None));
    }
    let trailer_at = value.len().checked_sub(DATA_TRAILER).ok_or_else(|| corrupt("data trailer"))?;
    let (rest, trailer) = value.split_at(trailer_at);
    let version = i64::from_le_bytes(trailer[..8].try_into().map_err(|_| corrupt("data version"))?);
    let len = u32::from_le_bytes(trailer[8..].try_into().map_err(|_| corrupt("data length"))?);
    let data_at =
        usize::try_from(len).ok().and_then(|len| rest.len().checked_sub(len)).ok_or_else(|| corrupt("data"))?;
    let (record, json) = rest.split_at(data_at);
    Ok((record, Some((version, json))))
}

fn decode_record(id: SessionId, value: &[u8]) -> Result<Session, StoreError> {
    if value.len() < OPTIONAL + 2 || value[0] != FORMAT {
        return Err(corrupt("unknown format"));
    }
    let number = |at: usize| -> i64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&value[at..at + 8]);
        i64::from_le_bytes(bytes)
    };
    let time = |at: usize| -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(number(at)) * 1_000).map_err(|_| corrupt("time"))
    };
    let flags = value[2];
    let kind = match value[1] {
        0 => SessionKind::Cookie,
        1 => SessionKind::Token,
        _ => return Err(corrupt("kind")),
    };
    let mut user = [0u8; 16];
    user.copy_from_slice(&value[USER..OPTIONAL]);
    let mut rest = &value[OPTIONAL..];
    let mut take = |len: usize| -> Result<&[u8], StoreError> {
        let (head, tail) = rest.split_at_checked(len).ok_or_else(|| corrupt("truncated"))?;
        rest = tail;
        Ok(head)
    };
    let mut optional_time = |flag: u8| -> Result<Option<OffsetDateTime>, StoreError> {
        if flags & flag == 0 {
            return Ok(None);
        }
        let bytes: [u8; 8] = take(8)?.try_into().map_err(|_| corrupt("time"))?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(i64::from_le_bytes(bytes)) * 1_000);
        at.map(Some).map_err(|_| corrupt("time"))
    };
    let rotated_at = optional_time(ROTATED)?;
    let revoked_at = optional_time(REVOKED)?;
    let digest_len = usize::from(take(1)?[0]);
    let secret_digest = match digest_len {
        0 => None,
        _ => Some(TokenDigest::from_slice(take(digest_len)?).ok_or_else(|| corrupt("digest"))?),
    };
    let ip_len = usize::from(take(1)?[0]);
    let ip = take(ip_len)?;
    let ip = unpack_ip(flags, ip)?;
    let app = if flags & APP != 0 {
        let sso: [u8; 16] = take(16)?.try_into().map_err(|_| corrupt("SSO session"))?;
        let client_len = usize::from(take(1)?[0]);
        let client = std::str::from_utf8(take(client_len)?).ok().and_then(ClientId::parse);
        let client_id = client.ok_or_else(|| corrupt("client id"))?;
        let scope_len = usize::from(take(1)?[0]);
        let scope = std::str::from_utf8(take(scope_len)?).map_err(|_| corrupt("scope"))?;
        let scopes = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        Some(AppSession { client_id, sso_session: SessionId::from_uuid(Uuid::from_bytes(sso)), scopes })
    } else {
        None
    };
    let user_agent = if flags & HAS_USER_AGENT != 0 {
        Some(user_agent::unpack(rest).ok_or_else(|| corrupt("user agent"))?)
    } else {
        None
    };
    Ok(Session {
        id,
        user_id: UserId::from_uuid(Uuid::from_bytes(user)),
        kind,
        secret_digest,
        refresh_counter: u64::try_from(number(COUNTER)).map_err(|_| corrupt("counter"))?,
        rotated_at,
        created_at: time(CREATED)?,
        last_seen_at: time(LAST_SEEN)?,
        absolute_expires_at: time(ABSOLUTE)?,
        idle_timeout: Duration::microseconds(number(IDLE)),
        client: ClientInfo { user_agent, ip },
        revoked_at,
        app,
    })
}

/// An address as its 4 or 16 bytes when that gives back exactly the same text, else the text.
fn pack_ip(text: &str) -> (u8, Vec<u8>) {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) if v4.to_string() == text => (IP_BINARY, v4.octets().to_vec()),
        Ok(IpAddr::V6(v6)) if v6.to_string() == text => (IP_BINARY, v6.octets().to_vec()),
        _ => (IP_TEXT, text.as_bytes().to_vec()),
    }
}

fn unpack_ip(flags: u8, bytes: &[u8]) -> Result<Option<String>, StoreError> {
    if flags & IP_BINARY != 0 {
        let address = match bytes.len() {
            4 => IpAddr::from(<[u8; 4]>::try_from(bytes).map_err(|_| corrupt("ip"))?),
            16 => IpAddr::from(<[u8; 16]>::try_from(bytes).map_err(|_| corrupt("ip"))?),
            _ => return Err(corrupt("ip")),
        };
        Ok(Some(address.to_string()))
    } else if flags & IP_TEXT != 0 {
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| corrupt("ip"))
    } else {
        Ok(None)
    }
}

/// A session id from its 16 raw bytes (an index member).
pub fn session_id(bytes: &[u8]) -> Option<SessionId> {
    Uuid::from_slice(bytes).ok().map(SessionId::from_uuid)
}

#[cfg(test)]
mod tests {
    use latchkey_core::secret::SecretToken;

    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        latchkey_testkit::fixtures::fixed_instant() + Duration::seconds(seconds) + Duration::microseconds(123_456)
    }

    fn sample(kind: SessionKind) -> Session {
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            kind,
            secret_digest: (kind == SessionKind::Cookie).then(|| SecretToken::generate().digest()),
            refresh_counter: 42,
            rotated_at: Some(at(5)),
            created_at: at(0),
            last_seen_at: at(7),
            absolute_expires_at: at(86_400),
            idle_timeout: Duration::hours(12),
            client: ClientInfo::new(Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0"), Some("2001:db8::1".into())),
            revoked_at: Some(at(9)),
            app: (kind == SessionKind::Token).then(|| AppSession {
                client_id: ClientId::generate(),
                sso_session: SessionId::generate(),
                scopes: vec!["openid".into(), "profile".into()],
            }),
        }
    }

    #[test]
    fn every_field_round_trips() {
        for kind in [SessionKind::Cookie, SessionKind::Token] {
            let full = sample(kind);
            assert_eq!(decode(full.id, &encode(&full)).ok(), Some(full.clone()));
            let bare = Session {
                rotated_at: None,
                revoked_at: None,
                app: None,
                client: ClientInfo { user_agent: None, ip: None },
                ..full
            };
            assert_eq!(decode(bare.id, &encode(&bare)).ok(), Some(bare.clone()));
            for ip in ["", "192.0.2.1", "::ffff:192.0.2.1", "2001:DB8::1", "010.1.1.1", "not an address"] {
                let odd = Session {
                    client: ClientInfo { user_agent: Some(String::new()), ip: Some(ip.into()) },
                    revoked_at: Some(at(3)),
                    ..bare.clone()
                };
                assert_eq!(decode(odd.id, &encode(&odd)).ok(), Some(odd.clone()), "{ip}");
            }
        }
    }

    #[test]
    fn the_fixed_offsets_hold_the_fields_scripts_change() {
        let session = sample(SessionKind::Token);
        let value = encode(&session);
        let read = |offset: usize| i64::from_le_bytes(value[offset..offset + 8].try_into().unwrap_or_default());
        assert_eq!(read(LAST_SEEN), micros(session.last_seen_at));
        assert_eq!(read(COUNTER), 42);
        assert_eq!(read(ABSOLUTE), micros(session.absolute_expires_at));
        assert_eq!(read(IDLE), Duration::hours(12).whole_microseconds() as i64);
        assert_eq!(value[2], ROTATED | REVOKED | HAS_USER_AGENT | IP_BINARY | APP);
        let read_at = |offset: usize| read(offset);
        assert_eq!(read_at(OPTIONAL), micros(session.rotated_at.unwrap_or(OffsetDateTime::UNIX_EPOCH)));
        assert_eq!(read_at(OPTIONAL + 8), micros(session.revoked_at.unwrap_or(OffsetDateTime::UNIX_EPOCH)));
    }

    /// What the data script appends (see `WRITE_DATA` in the crate root).
    fn with_data(value: &[u8], version: i64, json: &str) -> Vec<u8> {
        let packed = pack_data(json);
        let mut value = value.to_vec();
        value[2] |= HAS_DATA;
        value.extend_from_slice(&packed);
        value.extend_from_slice(&version.to_le_bytes());
        value.extend_from_slice(&u32::try_from(packed.len()).unwrap_or_default().to_le_bytes());
        value
    }

    #[test]
    fn data_is_compressed_only_when_that_makes_it_smaller() {
        let cart = format!(r#"{{"cart":[{}]}}"#, vec![r#"{"sku":"apple","qty":2}"#; 40].join(","));
        let packed = pack_data(&cart);
        assert!(packed[0] == ZSTD && packed.len() < cart.len() / 4, "{} of {}", packed.len(), cart.len());
        assert_eq!(unpack_data(&packed).ok(), Some(cart));
        // Text that never repeats still shrinks: its bytes are 64 of 256 values.
        let mut random = [0u8; 768];
        latchkey_core::secret::fill_random(&mut random);
        let noise = format!(r#"{{"k":"{}"}}"#, latchkey_core::secret::b64url(&random));
        let packed = pack_data(&noise);
        assert!(packed[0] == ZSTD && packed.len() < noise.len() * 85 / 100, "{} of {}", packed.len(), noise.len());
        assert_eq!(unpack_data(&packed).ok(), Some(noise));
        for small in ["{}", r#"{"a":1}"#, r#"{"k":"Zq8#pL2!vX"}"#] {
            assert_eq!(pack_data(small), small.as_bytes(), "{small}");
            assert_eq!(unpack_data(small.as_bytes()).ok().as_deref(), Some(small));
        }
    }

    #[test]
    fn data_packed_with_lz4_before_zstd_still_reads() {
        let cart = format!(r#"{{"cart":[{}]}}"#, vec![r#"{"sku":"fig","qty":1}"#; 20].join(","));
        let mut packed = vec![LZ4];
        packed.extend_from_slice(&u16::try_from(cart.len()).unwrap_or_default().to_le_bytes());
        packed.extend_from_slice(&lz4_flex::block::compress(cart.as_bytes()));
        assert_eq!(unpack_data(&packed).ok(), Some(cart));
    }

    #[test]
    fn damaged_compressed_data_is_an_error() {
        let cart = format!(r#"{{"cart":[{}]}}"#, vec![r#"{"sku":"apple","qty":2}"#; 40].join(","));
        let packed = pack_data(&cart);
        let mut wrong_length = packed.clone();
        // The frame header's content size (single segment: no window byte) follows the magic and
        // the descriptor: claim one byte more than the block holds.
        wrong_length[6] = wrong_length[6].wrapping_add(1);
        for damaged in [
            &[ZSTD][..],
            &[ZSTD, 0x28, 0xb5, 0x2f],
            &packed[..packed.len() - 1],
            &wrong_length,
            &[LZ4],
            &[LZ4, 5],
            &[LZ4, 0xff, 0xff, 0x10, b'x'],
            &[LZ4, 4, 0, 0x40, b'{', b'}'],
        ] {
            assert!(unpack_data(damaged).is_err(), "{damaged:?}");
        }
        // A frame that would grow past the data's limit is refused before it is inflated.
        let huge = zstd::bulk::compress(&vec![b' '; MAX_DATA_BYTES + 1], ZSTD_LEVEL).unwrap_or_default();
        assert!(unpack_data(&[&[ZSTD][..], &huge].concat()).is_err());
    }

    #[test]
    fn the_data_trailer_round_trips_and_leaves_the_session_as_it_was() {
        for kind in [SessionKind::Cookie, SessionKind::Token] {
            let session = sample(kind);
            let value = with_data(&encode(&session), 7, r#"{"cart":["fig"]}"#);
            let (read, data) = decode_with_data(session.id, &value).unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(read, session);
            assert_eq!(data, StoredData { version: 7, json: r#"{"cart":["fig"]}"#.into() });
            let (_, none) = decode_with_data(session.id, &encode(&session)).unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(none, StoredData::empty());
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let value = with_data(&encode(&sample(SessionKind::Token)), 3, r#"{"a":1}"#);
        for len in 0..value.len() {
            let _ = decode_with_data(SessionId::generate(), &value[..len]);
        }
        let mut too_long = value.clone();
        let at = too_long.len() - 4;
        too_long[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_with_data(SessionId::generate(), &too_long).is_err());
        let value = encode(&sample(SessionKind::Cookie));
        for len in 0..value.len() {
            let _ = decode(SessionId::generate(), &value[..len]);
        }
        let mut wrong_kind = value.clone();
        wrong_kind[1] = 9;
        assert!(decode(SessionId::generate(), &wrong_kind).is_err());
        let mut wrong_format = value;
        wrong_format[0] = 2;
        assert!(decode(SessionId::generate(), &wrong_format).is_err());
    }
}
