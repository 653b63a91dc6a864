//! Signed snapshots and sync responses (SPEC §7): the hub signs the exact bytes of a snapshot,
//! or of a `/v1/sync` response, with Ed25519, and an edge that knows the hub's public key accepts
//! only what carries a signature that checks.
//!
//! Signed, a snapshot travels as an **envelope**
//! `{ "payload": "<base64 of the snapshot's bytes>", "signature": "<base64, 64 bytes>", "keyId": "…" }`.
//! The signature covers the payload's bytes exactly as they were signed — they are never parsed
//! and re-serialised before checking — so any change to a byte, including white space, is caught.
//! A signed sync response is the same envelope around the response's JSON, which then also names
//! the edge run it answers (`edgeId`, `bootId`; [`seal_sync_response`]). One key signs both; the
//! two payloads cannot stand in for each other, as each decoder refuses the other's fields.
//!
//! - [`open`] / [`open_value`]: what an edge does with what it received (envelope or plain
//!   snapshot), with or without a configured [`PublicKey`]; for a sync response,
//!   [`crate::sync::SyncResponse::open`].
//! - [`seal`] / [`KeyPair::seal`]: what the hub and `tollgate sign` do; [`seal_sync_response`]:
//!   what the hub does with a sync response.
//! - [`encode_base64`] / [`decode_base64`]: RFC 4648 standard base64 with padding, strict.
//!
//! Keys are 32 raw bytes written in base64: a public key (what `tollgate keygen` prints as
//! `publicKey` and what JS users pass as `hubPublicKey`) and a secret key, the 32-byte seed.
//! Nothing here draws randomness: a new seed comes from the caller.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha512};

use crate::error::{Code, Error, Result};
use crate::json::{Fields, Problems};

/// Length of a public key or a secret-key seed, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an Ed25519 signature, in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// Longest accepted key id, in characters.
pub const MAX_KEY_ID_LEN: usize = 64;

// ---------------------------------------------------------------------------------------------
// base64

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a text is not strict standard base64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// The length is not a multiple of 4 (padding is required).
    Length(usize),
    /// A character outside `A–Z a–z 0–9 + /` at this byte offset.
    Character(usize),
    /// `=` anywhere but the last one or two places of the text.
    Padding,
    /// The unused bits of the last character are not zero, so the text is not the one encoding
    /// of its bytes.
    TrailingBits,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::Length(n) => write!(f, "its length {n} is not a multiple of 4"),
            Base64Error::Character(at) => write!(f, "it has a character outside the base64 alphabet at offset {at}"),
            Base64Error::Padding => f.write_str("'=' padding may only end the text, at most twice"),
            Base64Error::TrailingBits => f.write_str("the unused bits of its last character are not zero"),
        }
    }
}

/// Standard base64 (RFC 4648 §4) with `=` padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let at = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (at(0) << 16) | (at(1) << 8) | at(2);
        // A chunk of k bytes gives k + 1 characters, then padding up to 4.
        for i in 0..4 {
            if i <= chunk.len() {
                let sextet = (n >> (18 - 6 * i)) & 0x3f;
                out.extend(ALPHABET.get(sextet as usize).map(|&c| char::from(c)));
            // masked to 0..64
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The value of each byte as a base64 character, or [`NOT_BASE64`].
#[allow(clippy::indexing_slicing, reason = "evaluated at compile time: an index out of range fails the build")]
const SEXTETS: [u8; 256] = {
    let mut table = [NOT_BASE64; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const NOT_BASE64: u8 = 0xff;

fn sextet(c: u8) -> u8 {
    SEXTETS.get(usize::from(c)).copied().unwrap_or(NOT_BASE64) // a u8 always indexes 256 entries
}

/// The error for a quad that holds a byte outside the alphabet, starting at offset `at`.
fn bad_quad(quad: &[u8], at: usize) -> Base64Error {
    match quad.iter().position(|&c| sextet(c) == NOT_BASE64) {
        Some(i) if quad.get(i) == Some(&b'=') => Base64Error::Padding,
        Some(i) => Base64Error::Character(at + i),
        None => Base64Error::Padding,
    }
}

/// Decodes standard base64 (RFC 4648 §4) strictly: padding required, no white space, no
/// URL-safe characters, and only the canonical encoding (unused trailing bits zero), so each
/// byte string has exactly one accepted text.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, Base64Error> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(Base64Error::Length(bytes.len()));
    }
    let Some(body_len) = bytes.len().checked_sub(4) else { return Ok(Vec::new()) };
    let (body, last) = bytes.split_at(body_len);
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    // Every quad but the last: four alphabet characters, three bytes (a snapshot's payload is
    // megabytes, so this loop is kept tight: one table look-up per character, one check per quad).
    for (q, quad) in body.chunks_exact(4).enumerate() {
        let &[a, b, c, d] = quad else { continue };
        let [a, b, c, d] = [sextet(a), sextet(b), sextet(c), sextet(d)];
        if (a | b | c | d) & 0xc0 != 0 {
            return Err(bad_quad(quad, q * 4));
        }
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        let [_, x, y, z] = n.to_be_bytes();
        out.extend_from_slice(&[x, y, z]);
    }
    // The last quad: up to two `=`, and zero bits after the last byte.
    let pad = last.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return Err(Base64Error::Padding);
    }
    let mut n = 0u32;
    for &c in last.iter().take(4 - pad) {
        let v = sextet(c);
        if v == NOT_BASE64 {
            return Err(bad_quad(last, body_len));
        }
        n = (n << 6) | u32::from(v);
    }
    n <<= 6 * pad;
    let [_, a, b, c] = n.to_be_bytes();
    match pad {
        0 => out.extend_from_slice(&[a, b, c]),
        1 if c == 0 => out.extend_from_slice(&[a, b]),
        2 if b == 0 && c == 0 => out.push(a),
        _ => return Err(Base64Error::TrailingBits),
    }
    Ok(out)
}

/// `N` bytes from base64 text, or an `invalid_value` error at `path` naming `what`.
fn decode_fixed<const N: usize>(text: &str, path: &str, what: &str) -> Result<[u8; N]> {
    let bytes = decode_base64(text)
        .map_err(|e| Error::new(Code::InvalidValue, path, format!("{what} is not standard base64: {e}")))?;
    let len = bytes.len();
    <[u8; N]>::try_from(bytes)
        .map_err(|_| Error::new(Code::InvalidValue, path, format!("{what} must be {N} bytes, got {len}")))
}

// ---------------------------------------------------------------------------------------------
// keys

/// An Ed25519 public key: the hub's, configured at the edge to check snapshots.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key from its 32 bytes; `invalid_value` (path `""`) if they are not a usable point.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<PublicKey> {
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|_| Error::new(Code::InvalidValue, "", "the public key is not a valid Ed25519 point"))?;
        if key.is_weak() {
            return Err(Error::new(Code::InvalidValue, "", "the public key is a weak (small-order) Ed25519 point"));
        }
        Ok(PublicKey(key))
    }

    /// The key from the base64 of its 32 bytes (surrounding white space is ignored, so a pasted
    /// line or an environment variable with a newline works). Errors are `invalid_value` at
    /// path `""`; put them under the option's own path with [`Error::under`].
    pub fn parse(text: &str) -> Result<PublicKey> {
        let bytes = decode_fixed::<KEY_LEN>(text.trim(), "", "the public key")?;
        PublicKey::from_bytes(&bytes)
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0.to_bytes()
    }

    /// The base64 of the 32 bytes (what [`PublicKey::parse`] reads).
    pub fn to_base64(&self) -> String {
        encode_base64(self.0.as_bytes())
    }

    /// The default key id: the first 8 bytes of SHA-512 over the 32 key bytes, as 16 lowercase
    /// hex digits. Deterministic, so the hub and every edge derive the same id from the key.
    pub fn key_id(&self) -> String {
        let digest = Sha512::digest(self.0.as_bytes());
        let mut out = String::with_capacity(16);
        for b in digest.iter().take(8) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Checks `signature` over exactly `message`: `bad_signature` (path `/signature`) if it does
    /// not match. Strict Ed25519 verification: non-canonical signatures are refused too.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<()> {
        self.0.verify_strict(message, &Signature::from_bytes(signature)).map_err(|_| {
            Error::new(
                Code::BadSignature,
                "/signature",
                "the signature does not match the payload under the configured public key",
            )
        })
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

/// An Ed25519 secret key, kept as its 32-byte seed. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// The key of a 32-byte seed. The seed must come from a secure random source (the CLI reads
    /// `/dev/urandom`); the core draws no randomness.
    pub fn from_seed(seed: &[u8; KEY_LEN]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The key from the base64 of its seed; `invalid_value` at path `""` otherwise.
    pub fn parse(text: &str) -> Result<SecretKey> {
        Ok(SecretKey::from_seed(&decode_fixed::<KEY_LEN>(text.trim(), "", "the secret key")?))
    }

    /// The base64 of the seed (what [`SecretKey::parse`] reads). Handle with care.
    pub fn to_base64(&self) -> String {
        encode_base64(self.0.as_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The Ed25519 signature of exactly `message` (deterministic: same key and message, same
    /// signature).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public_key())
    }
}

/// Checks a key id: 1 to [`MAX_KEY_ID_LEN`] characters, each an ASCII letter, digit, `-`, `_`,
/// `.` or `:` (safe in headers, logs and file names). `invalid_value` at path `""` otherwise.
pub fn check_key_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Code::InvalidValue,
            "",
            format!("{id:?} is not a key id (1 to {MAX_KEY_ID_LEN} of A-Z a-z 0-9 - _ . :)"),
        ))
    }
}

/// A signing key with its id: the content of a key file
/// `{ "keyId": "…", "publicKey": "<base64>", "secretKey": "<base64 seed>" }`.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The id written into every envelope signed with this key.
    pub key_id: String,
    /// The secret key.
    pub secret: SecretKey,
}

impl KeyPair {
    /// A key pair from a seed; `key_id` defaults to [`PublicKey::key_id`]. A given id must pass
    /// [`check_key_id`].
    pub fn from_seed(seed: &[u8; KEY_LEN], key_id: Option<&str>) -> Result<KeyPair> {
        let secret = SecretKey::from_seed(seed);
        let key_id = match key_id {
            Some(id) => {
                check_key_id(id)?;
                id.to_string()
            }
            None => secret.public_key().key_id(),
        };
        Ok(KeyPair { key_id, secret })
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// Reads a key file's JSON. `publicKey` is optional but, when present, must be the secret
    /// key's own (`invalid_value` at `/publicKey` otherwise); `keyId` defaults as in
    /// [`KeyPair::from_seed`]. The first problem is returned, with its path.
    pub fn from_value(value: &Value) -> Result<KeyPair> {
        let mut problems: Problems = Vec::new();
        let (secret, public, key_id) = match Fields::open(value, "", &mut problems) {
            Some(mut f) => {
                let secret = f.str("secretKey");
                let public = f.opt_str("publicKey");
                let key_id = f.opt_str("keyId");
                f.finish();
                (secret, public, key_id)
            }
            None => (None, None, None),
        };
        if let Some(first) = problems.into_iter().next() {
            return Err(first);
        }
        let secret = secret.ok_or_else(|| Error::new(Code::MissingField, "/secretKey", "\"secretKey\" is required"))?;
        let seed = decode_fixed::<KEY_LEN>(&secret, "/secretKey", "secretKey")?;
        let pair = KeyPair::from_seed(&seed, None)?;
        if let Some(public) = public {
            let given = PublicKey::parse(&public).map_err(|e| e.under("/publicKey"))?;
            if given != pair.public_key() {
                return Err(Error::new(
                    Code::InvalidValue,
                    "/publicKey",
                    "publicKey is not the secret key's public key",
                ));
            }
        }
        match key_id {
            Some(id) => {
                check_key_id(&id).map_err(|e| e.under("/keyId"))?;
                Ok(KeyPair { key_id: id, ..pair })
            }
            None => Ok(pair),
        }
    }

    /// The key file's JSON: `keyId`, `publicKey`, `secretKey`.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("keyId".into(), Value::String(self.key_id.clone()));
        map.insert("publicKey".into(), Value::String(self.public_key().to_base64()));
        map.insert("secretKey".into(), Value::String(self.secret.to_base64()));
        Value::Object(map)
    }

    /// The signed envelope of `payload` under this key and its id (see [`seal`]).
    pub fn seal(&self, payload: &[u8]) -> Value {
        seal(payload, &self.secret, &self.key_id)
    }
}

// ---------------------------------------------------------------------------------------------
// envelopes

/// A decoded (not yet checked) envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The signed bytes: the snapshot's (or sync response's) JSON text exactly as the hub signed it.
    pub payload: Vec<u8>,
    /// The Ed25519 signature over `payload`.
    pub signature: [u8; SIGNATURE_LEN],
    /// The signer's key id, if given (informational: the configured key decides).
    pub key_id: Option<String>,
}

impl Envelope {
    /// Decodes an envelope's shape: `payload` and `signature` required strings of base64
    /// (`invalid_value` at `/payload` or `/signature` if not, or if the signature is not 64
    /// bytes), `keyId` an optional string, no other field (`unknown_field`). Does not verify.
    pub fn decode(value: &Value) -> Result<Envelope> {
        let mut problems: Problems = Vec::new();
        let (payload, signature, key_id) = match Fields::open(value, "", &mut problems) {
            Some(mut f) => {
                let payload = f.str("payload");
                let signature = f.str("signature");
                let key_id = f.opt_str("keyId");
                f.finish();
                (payload, signature, key_id)
            }
            None => (None, None, None),
        };
        if let Some(first) = problems.into_iter().next() {
            return Err(first);
        }
        let (Some(payload), Some(signature)) = (payload, signature) else {
            return Err(Error::new(Code::MissingField, "", "an envelope needs \"payload\" and \"signature\""));
        };
        let payload = decode_base64(&payload)
            .map_err(|e| Error::new(Code::InvalidValue, "/payload", format!("payload is not standard base64: {e}")))?;
        let signature = decode_fixed::<SIGNATURE_LEN>(&signature, "/signature", "signature")?;
        Ok(Envelope { payload, signature, key_id })
    }

    /// Checks the signature over the exact payload bytes: `bad_signature` if it does not match.
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        key.verify(&self.payload, &self.signature)
    }

    /// The envelope's JSON: `payload`, `signature` and, when known, `keyId`.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        if let Some(id) = &self.key_id {
            map.insert("keyId".into(), Value::String(id.clone()));
        }
        map.insert("payload".into(), Value::String(encode_base64(&self.payload)));
        map.insert("signature".into(), Value::String(encode_base64(&self.signature)));
        Value::Object(map)
    }
}

/// Signs `payload` (the snapshot's exact JSON bytes) and returns the envelope
/// `{ "keyId", "payload", "signature" }`. Deterministic (Ed25519 signatures are).
pub fn seal(payload: &[u8], key: &SecretKey, key_id: &str) -> Value {
    Envelope { payload: payload.to_vec(), signature: key.sign(payload), key_id: Some(key_id.to_string()) }.to_value()
}

/// Signs a `/v1/sync` response for the edge run it answers, with the hub's key: the payload is
/// `body` (the response's JSON object — `ackSeq`, `leases`, `snapshot`, and any field the hub
/// adds such as `problems`) with `edgeId` and `bootId` set to the request's, serialised once,
/// compactly; the result is the envelope `{ "keyId", "payload", "signature" }`. An embedded
/// snapshot is left as it is (the hub's own signed snapshot envelope: an edge checks it as a
/// snapshot). A `body` that is not an object is sealed unchanged, and edges refuse it.
pub fn seal_sync_response(key: &KeyPair, mut body: Value, edge_id: &str, boot_id: &str) -> Value {
    if let Value::Object(map) = &mut body {
        map.insert("edgeId".into(), Value::String(edge_id.to_string()));
        map.insert("bootId".into(), Value::String(boot_id.to_string()));
    }
    // Serialising a `Value` cannot fail (its keys are strings).
    key.seal(&serde_json::to_vec(&body).unwrap_or_default())
}

/// Whether `value` is meant as an envelope: an object with a `payload` or a `signature` field
/// (a snapshot has neither, so a half envelope is reported as a broken envelope).
pub fn is_envelope(value: &Value) -> bool {
    value.as_object().is_some_and(|m| m.contains_key("payload") || m.contains_key("signature"))
}

/// What [`open`] accepted.
#[derive(Clone, Debug, PartialEq)]
pub enum Opened<'v> {
    /// An envelope. `verified` is true when a key was configured (and the signature matched);
    /// without a key the payload is taken as it is.
    Signed {
        /// The decoded envelope; `payload` holds the snapshot's JSON bytes.
        envelope: Envelope,
        /// Whether the signature was checked against a configured key.
        verified: bool,
    },
    /// A plain snapshot object (only ever returned when no key is configured).
    Plain(&'v Value),
}

/// Accepts what an edge received as a snapshot (or a sync response), in either form:
///
/// - an envelope ([`is_envelope`]) is decoded ([`Envelope::decode`]) and, when `key` is given,
///   its signature is checked over the exact payload bytes (`bad_signature`);
/// - a plain object is returned as it is when no key is given, and refused with
///   `unsigned_snapshot` (path `""`) when one is;
/// - anything but an object is `invalid_type` (path `""`).
///
/// The snapshot itself is not decoded here: parse the payload with [`parse_payload`] (or use
/// [`open_value`], which does both) and decode it as usual.
pub fn open<'v>(value: &'v Value, key: Option<&PublicKey>) -> Result<Opened<'v>> {
    if is_envelope(value) {
        let envelope = Envelope::decode(value)?;
        if let Some(key) = key {
            envelope.verify(key)?;
        }
        return Ok(Opened::Signed { envelope, verified: key.is_some() });
    }
    if !value.is_object() {
        return Err(Error::new(
            Code::InvalidType,
            "",
            "expected an object: a snapshot (or a sync response), or its signed envelope {payload, signature, keyId}",
        ));
    }
    if key.is_some() {
        return Err(Error::new(
            Code::UnsignedSnapshot,
            "",
            "a hub public key is configured, so only a signed envelope {payload, signature, keyId} is accepted",
        ));
    }
    Ok(Opened::Plain(value))
}

/// The payload's bytes as JSON: `invalid_json` at `/payload` if they are not UTF-8 JSON.
/// Numbers keep their exact text, as everywhere in the crate.
pub fn parse_payload(payload: &[u8]) -> Result<Value> {
    let text = core::str::from_utf8(payload)
        .map_err(|e| Error::new(Code::InvalidJson, "/payload", format!("the payload is not UTF-8: {e}")))?;
    crate::json::parse(text).map_err(|e| Error::new(Code::InvalidJson, "/payload", e.message))
}

/// [`open`], then the snapshot's JSON value: the parsed payload of an envelope, or the plain
/// snapshot itself (moved, not copied). Decode the result with the snapshot decoder; its error
/// paths are relative to the snapshot (inside the payload).
pub fn open_value(value: Value, key: Option<&PublicKey>) -> Result<Value> {
    match open(&value, key)? {
        Opened::Signed { envelope, .. } => parse_payload(&envelope.payload),
        Opened::Plain(_) => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        for (plain, coded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(encode_base64(plain.as_bytes()), coded);
            assert_eq!(decode_base64(coded).as_deref(), Ok(plain.as_bytes()));
        }
    }

    #[test]
    fn key_id_is_16_hex_digits() {
        let id = SecretKey::from_seed(&[7; 32]).public_key().key_id();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
