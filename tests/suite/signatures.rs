//! Signed snapshots (SPEC §7): envelopes sealed and opened, altered bytes and missing
//! signatures refused with their codes, strict base64, key files, and the CLI's
//! `keygen` → `sign` → `verify` through the built binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use serde_json::{json, Value};
use tollgate::engine::Snapshot;
use tollgate::sync::signed::{
    decode_base64, encode_base64, open, open_value, parse_payload, seal, Base64Error, Envelope, KeyPair, Opened,
    PublicKey, SecretKey,
};
use tollgate::{Code, Error};

const SNAPSHOT: &str = include_str!("../../examples/llm-snapshot.json");
const DEMO_KEY: &str = include_str!("../../examples/keys/demo-hub.json");
const DEMO_SIGNED: &str = include_str!("../../examples/llm-snapshot.signed.json");

fn pair(seed: u8) -> KeyPair {
    KeyPair::from_seed(&[seed; 32], Some("test-key")).unwrap()
}

fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn assert_err(result: Result<impl std::fmt::Debug, Error>, code: Code, path: &str) {
    let e = result.unwrap_err();
    assert_eq!((e.code, e.path.as_str()), (code, path), "{e}");
}

/// The envelope's field `key` decoded, changed by `f`, and encoded again.
fn tamper(envelope: &Value, key: &str, f: impl FnOnce(&mut Vec<u8>)) -> Value {
    let mut bytes = decode_base64(envelope[key].as_str().unwrap()).unwrap();
    f(&mut bytes);
    let mut out = envelope.clone();
    out[key] = Value::String(encode_base64(&bytes));
    out
}

// ---- seal and open

#[test]
fn sealed_snapshot_opens_with_its_key_and_gives_back_the_exact_bytes() {
    let key = pair(1);
    let envelope = key.seal(SNAPSHOT.as_bytes());
    assert_eq!(envelope["keyId"], "test-key");
    assert_eq!(envelope.as_object().unwrap().len(), 3);
    match open(&envelope, Some(&key.public_key())).unwrap() {
        Opened::Signed { envelope: e, verified } => {
            assert!(verified);
            assert_eq!(e.payload, SNAPSHOT.as_bytes());
            assert_eq!(e.key_id.as_deref(), Some("test-key"));
        }
        other => panic!("{other:?}"),
    }
    let snapshot = open_value(envelope.clone(), Some(&key.public_key())).unwrap();
    assert_eq!(snapshot, value(SNAPSHOT));
    assert_eq!(Snapshot::from_value(&snapshot).unwrap().snapshot_version, 1);
    // Ed25519 is deterministic: the same key and bytes give the same envelope.
    assert_eq!(key.seal(SNAPSHOT.as_bytes()), envelope);
    assert_eq!(seal(SNAPSHOT.as_bytes(), &key.secret, "test-key"), envelope);
}

#[test]
fn a_flipped_payload_byte_is_a_bad_signature() {
    let key = pair(2);
    let envelope = key.seal(SNAPSHOT.as_bytes());
    for at in [0, 1, SNAPSHOT.len() / 2, SNAPSHOT.len() - 1] {
        let altered = tamper(&envelope, "payload", |b| b[at] ^= 0x01);
        assert_err(open(&altered, Some(&key.public_key())), Code::BadSignature, "/signature");
        assert_err(open_value(altered, Some(&key.public_key())), Code::BadSignature, "/signature");
    }
    // White space counts: the bytes are signed, not the JSON they spell.
    let spaced = tamper(&envelope, "payload", |b| b.push(b'\n'));
    assert_err(open(&spaced, Some(&key.public_key())), Code::BadSignature, "/signature");
    let truncated = tamper(&envelope, "payload", |b| b.truncate(b.len() - 1));
    assert_err(open(&truncated, Some(&key.public_key())), Code::BadSignature, "/signature");
}

#[test]
fn every_flipped_signature_bit_is_a_bad_signature() {
    let key = pair(3);
    let envelope = key.seal(b"{\"snapshotVersion\": 3}");
    for bit in 0..512 {
        let altered = tamper(&envelope, "signature", |b| b[bit / 8] ^= 1 << (bit % 8));
        assert_err(open(&altered, Some(&key.public_key())), Code::BadSignature, "/signature");
    }
}

#[test]
fn another_key_is_a_bad_signature() {
    let envelope = pair(4).seal(SNAPSHOT.as_bytes());
    assert_err(open(&envelope, Some(&pair(5).public_key())), Code::BadSignature, "/signature");
    // Swapping in the other key's signature does not help either.
    let forged = pair(5).seal(SNAPSHOT.as_bytes());
    assert_err(open(&forged, Some(&pair(4).public_key())), Code::BadSignature, "/signature");
}

#[test]
fn an_unsigned_snapshot_is_refused_once_a_key_is_configured() {
    let key = pair(6).public_key();
    let plain = value(SNAPSHOT);
    assert_err(open(&plain, Some(&key)), Code::UnsignedSnapshot, "");
    assert_err(open_value(plain, Some(&key)), Code::UnsignedSnapshot, "");
    assert_err(open(&json!({}), Some(&key)), Code::UnsignedSnapshot, "");
    assert_err(open(&json!([1, 2]), Some(&key)), Code::InvalidType, "");
    assert_err(open(&json!("text"), None), Code::InvalidType, "");
}

#[test]
fn without_a_key_both_forms_are_accepted() {
    let plain = value(SNAPSHOT);
    assert_eq!(open(&plain, None).unwrap(), Opened::Plain(&plain));
    assert_eq!(open_value(plain.clone(), None).unwrap(), plain);

    let envelope = pair(7).seal(SNAPSHOT.as_bytes());
    match open(&envelope, None).unwrap() {
        Opened::Signed { envelope: e, verified } => {
            assert!(!verified);
            assert_eq!(e.payload, SNAPSHOT.as_bytes());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(open_value(envelope.clone(), None).unwrap(), plain);
    // With no key nothing is checked, but the envelope must still be well formed.
    let altered = tamper(&envelope, "signature", |b| b[0] ^= 1);
    assert_eq!(open_value(altered, None).unwrap(), plain);
    assert_err(open(&json!({ "payload": "e30=", "signature": "AAAA" }), None), Code::InvalidValue, "/signature");
}

// ---- envelope shape

#[test]
fn envelope_shape_errors_have_codes_and_paths() {
    let key = pair(8);
    let good = key.seal(b"{}");
    let sig = good["signature"].clone();
    let pk = key.public_key();
    let cases: Vec<(Value, Code, &str)> = vec![
        (json!({ "payload": "e30=", "signature": sig, "keyId": "k", "extra": 1 }), Code::UnknownField, "/extra"),
        (json!({ "payload": "e30=" }), Code::MissingField, "/signature"),
        (json!({ "signature": sig }), Code::MissingField, "/payload"),
        (json!({ "payload": 7, "signature": sig }), Code::InvalidType, "/payload"),
        (json!({ "payload": "e30=", "signature": [1] }), Code::InvalidType, "/signature"),
        (json!({ "payload": "e30=", "signature": sig, "keyId": 12 }), Code::InvalidType, "/keyId"),
        (json!({ "payload": "e30", "signature": sig }), Code::InvalidValue, "/payload"),
        (json!({ "payload": "e3 0=", "signature": sig }), Code::InvalidValue, "/payload"),
        (json!({ "payload": "e30=", "signature": "not base64!" }), Code::InvalidValue, "/signature"),
        (json!({ "payload": "e30=", "signature": encode_base64(&[0; 63]) }), Code::InvalidValue, "/signature"),
        (json!({ "payload": "e30=", "signature": encode_base64(&[0; 65]) }), Code::InvalidValue, "/signature"),
    ];
    for (input, code, path) in cases {
        let got = open(&input, Some(&pk)).unwrap_err();
        assert_eq!((got.code, got.path.as_str()), (code, path), "{input}: {got}");
        let got = Envelope::decode(&input).unwrap_err();
        assert_eq!((got.code, got.path.as_str()), (code, path), "{input}: {got}");
    }
    // keyId is optional (and null is absent); the configured key decides, not the id.
    let mut no_id = good.clone();
    no_id.as_object_mut().unwrap().remove("keyId");
    assert!(open(&no_id, Some(&pk)).is_ok());
    no_id["keyId"] = Value::Null;
    assert!(open(&no_id, Some(&pk)).is_ok());
    let mut other_id = good;
    other_id["keyId"] = json!("someone-else");
    assert!(open(&other_id, Some(&pk)).is_ok());
}

#[test]
fn a_payload_that_is_not_json_is_invalid_json_at_payload() {
    let key = pair(9);
    for bytes in [&b"{\"snapshotVersion\": "[..], b"\xff\xfe{}", b""] {
        let envelope = key.seal(bytes);
        assert!(open(&envelope, Some(&key.public_key())).is_ok());
        assert_err(open_value(envelope, Some(&key.public_key())), Code::InvalidJson, "/payload");
        assert_err(parse_payload(bytes), Code::InvalidJson, "/payload");
    }
    assert_eq!(parse_payload(b"{\"n\": 1.50}").unwrap()["n"].to_string(), "1.50");
}

#[test]
fn envelope_round_trips_through_its_json() {
    let envelope = Envelope { payload: b"abc".to_vec(), signature: [9; 64], key_id: None };
    let v = envelope.to_value();
    assert_eq!(v, json!({ "payload": "YWJj", "signature": encode_base64(&[9; 64]) }));
    assert_eq!(Envelope::decode(&v).unwrap(), envelope);
}

// ---- keys

#[test]
fn rfc8032_test_vectors_sign_and_verify() {
    // RFC 8032 §7.1, tests 1 and 2.
    let vectors = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];
    for (secret, public, message, signature) in vectors {
        let secret = SecretKey::from_seed(&hex(secret).try_into().unwrap());
        assert_eq!(secret.public_key().to_bytes().to_vec(), hex(public));
        let sig = secret.sign(&hex(message));
        assert_eq!(sig.to_vec(), hex(signature));
        let public = PublicKey::parse(&encode_base64(&hex(public))).unwrap();
        public.verify(&hex(message), &sig).unwrap();
    }
}

#[test]
fn public_keys_parse_from_base64_of_32_bytes() {
    let key = pair(10).public_key();
    let text = key.to_base64();
    assert_eq!(text.len(), 44);
    assert_eq!(PublicKey::parse(&text).unwrap(), key);
    assert_eq!(PublicKey::parse(&format!("  {text}\n")).unwrap(), key);
    assert_eq!(key.to_string(), text);
    assert_eq!(PublicKey::from_bytes(&key.to_bytes()).unwrap(), key);
    assert_err(PublicKey::parse(""), Code::InvalidValue, "");
    assert_err(PublicKey::parse(&encode_base64(&[1; 31])), Code::InvalidValue, "");
    assert_err(PublicKey::parse(&encode_base64(&[1; 33])), Code::InvalidValue, "");
    assert_err(PublicKey::parse(&text.replace('=', "")), Code::InvalidValue, "");
    assert_err(PublicKey::parse(&text.replace(['+', '/'], "-")), Code::InvalidValue, "");
    // The identity point (y = 1) is a small-order, "weak" key: a signature under it means nothing.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_err(PublicKey::from_bytes(&identity), Code::InvalidValue, "");
    let e = PublicKey::parse(&encode_base64(&identity)).unwrap_err().under("/options/hubPublicKey");
    assert_eq!(e.path, "/options/hubPublicKey");
}

#[test]
fn the_default_key_id_is_the_first_8_bytes_of_sha512_of_the_public_key_in_hex() {
    use sha2::{Digest, Sha512};
    let p = pair(11);
    let digest = Sha512::digest(p.public_key().to_bytes());
    let want: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let unnamed = KeyPair::from_seed(&[11; 32], None).unwrap();
    assert_eq!(unnamed.key_id, want);
    assert_eq!(unnamed.key_id, p.public_key().key_id());
    assert_eq!(unnamed.key_id.len(), 16);
    assert!(unnamed.key_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert_ne!(unnamed.key_id, pair(12).public_key().key_id());
    for bad in ["", "has space", "ünï", &"x".repeat(65)] {
        assert_err(KeyPair::from_seed(&[1; 32], Some(bad)), Code::InvalidValue, "");
    }
    assert!(KeyPair::from_seed(&[1; 32], Some("hub-2026.11:a_B")).is_ok());
}

#[test]
fn key_files_round_trip_and_are_checked() {
    let p = pair(13);
    let file = p.to_value();
    assert_eq!(file.as_object().unwrap().len(), 3);
    let back = KeyPair::from_value(&file).unwrap();
    assert_eq!((back.key_id.as_str(), back.public_key()), ("test-key", p.public_key()));
    assert!(!format!("{back:?}").contains(file["secretKey"].as_str().unwrap()), "Debug must not show the secret");

    let secret = file["secretKey"].clone();
    let other_public = pair(14).public_key().to_base64();
    let cases: Vec<(Value, Code, &str)> = vec![
        (json!({ "secretKey": secret, "publicKey": other_public }), Code::InvalidValue, "/publicKey"),
        (json!({ "secretKey": secret, "publicKey": "AAAA" }), Code::InvalidValue, "/publicKey"),
        (json!({ "secretKey": "AAAA" }), Code::InvalidValue, "/secretKey"),
        (json!({ "secretKey": secret, "keyId": "a b" }), Code::InvalidValue, "/keyId"),
        (json!({ "secretKey": secret, "comment": "x" }), Code::UnknownField, "/comment"),
        (json!({ "publicKey": other_public }), Code::MissingField, "/secretKey"),
        (json!([]), Code::InvalidType, ""),
    ];
    for (input, code, path) in cases {
        assert_err(KeyPair::from_value(&input), code, path);
    }
    // Only the secret key is needed; the id then defaults.
    let bare = KeyPair::from_value(&json!({ "secretKey": secret })).unwrap();
    assert_eq!(bare.key_id, p.public_key().key_id());
}

#[test]
fn the_committed_demo_envelope_verifies_with_the_demo_key() {
    let demo = KeyPair::from_value(&value(DEMO_KEY)).unwrap();
    assert_eq!(demo.key_id, "demo-hub");
    let signed = value(DEMO_SIGNED);
    let Opened::Signed { envelope, verified: true } = open(&signed, Some(&demo.public_key())).unwrap() else {
        panic!("not a verified envelope")
    };
    assert_eq!(
        String::from_utf8(envelope.payload).unwrap(),
        SNAPSHOT,
        "examples/llm-snapshot.signed.json is stale: re-sign it with \
         `tollgate sign --key examples/keys/demo-hub.json examples/llm-snapshot.json`"
    );
    assert_eq!(demo.seal(SNAPSHOT.as_bytes()), signed);
}

// ---- base64

#[test]
fn base64_known_vectors() {
    // RFC 4648 §10.
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(encode_base64(plain.as_bytes()), coded);
        assert_eq!(decode_base64(coded).unwrap(), plain.as_bytes(), "{coded}");
    }
    // Every alphabet character, including the two that differ from URL-safe base64.
    assert_eq!(encode_base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    assert_eq!(decode_base64("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(decode_base64(&encode_base64(&all)).unwrap(), all);
}

#[test]
fn base64_refuses_what_is_not_strict_standard_base64() {
    let cases = [
        ("Zg", Base64Error::Length(2)),
        ("Zg=", Base64Error::Length(3)),
        ("Zm9vY", Base64Error::Length(5)),
        ("Z===", Base64Error::Padding),
        ("====", Base64Error::Padding),
        ("Zg==Zg==", Base64Error::Padding),
        ("=Zg=", Base64Error::Padding),
        ("Zm=v", Base64Error::Padding),
        ("Z=g=", Base64Error::Padding),
        ("Zm9v\nZm9v", Base64Error::Length(9)),
        ("Zm9 ", Base64Error::Character(3)),
        ("Zm9-", Base64Error::Character(3)),
        ("Zm_v", Base64Error::Character(2)),
        ("Zm9vZm-vZm9v", Base64Error::Character(6)),
        ("Zm9v=m9vZm9v", Base64Error::Padding),
        ("Zm9vZ\u{e9}9vZm9v", Base64Error::Length(13)),
        ("Zm9vZ\u{e9}vZm9v", Base64Error::Character(5)),
        ("Zm9\u{e9}", Base64Error::Length(5)),
        ("Z\u{e9}=", Base64Error::Character(1)),
        // Non-canonical: unused bits set ("Zg==" and "Zm8=" are the encodings).
        ("Zh==", Base64Error::TrailingBits),
        ("Zv==", Base64Error::TrailingBits),
        ("Zm9=", Base64Error::TrailingBits),
    ];
    for (text, want) in cases {
        assert_eq!(decode_base64(text), Err(want), "{text:?}");
    }
    // Every error reads as a sentence.
    assert!(Base64Error::TrailingBits.to_string().contains("bits"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn base64_decode_inverts_encode(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = encode_base64(&bytes);
        prop_assert_eq!(text.len() % 4, 0);
        prop_assert_eq!(decode_base64(&text).unwrap(), bytes);
    }

    /// Decoding never panics, and what it accepts is the one encoding of what it returns.
    #[test]
    fn base64_decode_never_panics_and_is_canonical(text in any::<String>()) {
        if let Ok(bytes) = decode_base64(&text) {
            prop_assert_eq!(encode_base64(&bytes), text);
        }
    }

    #[test]
    fn base64_decode_of_alphabet_soup_is_canonical(text in "[A-Za-z0-9+/=]{0,24}") {
        if let Ok(bytes) = decode_base64(&text) {
            prop_assert_eq!(encode_base64(&bytes), text);
        }
    }

    /// No envelope-like JSON makes `open` panic, with or without a key.
    #[test]
    fn open_never_panics(payload in "[A-Za-z0-9+/=]{0,12}", signature in "[A-Za-z0-9+/=]{0,92}",
                         extra in proptest::option::of("[a-z]{1,3}")) {
        let key = pair(15).public_key();
        let mut v = json!({ "payload": payload, "signature": signature });
        if let Some(k) = extra {
            v[k] = json!(1);
        }
        let _ = open(&v, Some(&key));
        let _ = open_value(v, None);
    }
}

// ---- the CLI

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory in the temp directory, unique to this process and call, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("tollgate-signatures-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate")).current_dir(crate::support::ROOT).args(args).output().unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty());
    String::from_utf8(out.stdout).unwrap()
}

/// A failure: exit status 1, nothing on stdout, one line on stderr; returns that line.
fn run_bad(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    stderr
}

#[test]
fn cli_keygen_sign_verify_round_trip() {
    let dir = TempDir::new();
    let key_path = dir.file("hub.json");
    let printed = value(&run_ok(&["keygen", "--out", &key_path]));
    let file = value(&std::fs::read_to_string(&key_path).unwrap());
    let public = PublicKey::parse(file["publicKey"].as_str().unwrap()).unwrap();
    // The public half is printed; the id is the derived default.
    assert_eq!(printed, json!({ "keyId": public.key_id(), "publicKey": public.to_base64() }));
    assert_eq!(KeyPair::from_value(&file).unwrap().public_key(), public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Never overwritten.
    assert!(run_bad(&["keygen", "--out", &key_path]).contains("already exists"));
    assert_eq!(value(&std::fs::read_to_string(&key_path).unwrap()), file);

    let signed_path = dir.file("signed.json");
    let envelope = run_ok(&["sign", "--key", &key_path, "examples/llm-snapshot.json"]);
    assert_eq!(envelope.lines().count(), 1);
    std::fs::write(&signed_path, &envelope).unwrap();
    let opened = open_value(value(&envelope), Some(&public)).unwrap();
    assert_eq!(opened, value(SNAPSHOT));

    let pk = public.to_base64();
    assert_eq!(
        run_ok(&["verify", "--public-key", &pk, &signed_path, "--json"]),
        format!("{{\"keyId\":\"{}\",\"snapshotVersion\":1}}\n", public.key_id())
    );
    assert_eq!(
        run_ok(&["verify", "--public-key", &pk, &signed_path]),
        format!("{signed_path}: valid signature by key {}, snapshotVersion 1\n", public.key_id())
    );

    // Another key, an altered payload, a plain snapshot.
    let other = pair(16).public_key().to_base64();
    assert!(run_bad(&["verify", "--public-key", &other, &signed_path]).contains("/signature: bad_signature"));
    let altered = tamper(&value(&envelope), "payload", |b| b[10] ^= 0x20);
    std::fs::write(&signed_path, altered.to_string()).unwrap();
    assert!(run_bad(&["verify", "--public-key", &pk, &signed_path]).contains("bad_signature"));
    assert!(run_bad(&["verify", "--public-key", &pk, "examples/llm-snapshot.json"]).contains("/: unsigned_snapshot"));
}

#[test]
fn cli_keygen_prints_a_whole_key_file_without_out() {
    let a = value(&run_ok(&["keygen", "--key-id", "edge-test"]));
    let b = value(&run_ok(&["keygen", "--key-id", "edge-test"]));
    let pa = KeyPair::from_value(&a).unwrap();
    assert_eq!(pa.key_id, "edge-test");
    assert_ne!(a["secretKey"], b["secretKey"], "two keys from /dev/urandom must differ");
    assert!(run_bad(&["keygen", "--key-id", "no spaces"]).starts_with("tollgate: --key-id: invalid_value"));
}

#[test]
fn cli_sign_refuses_invalid_snapshots_and_bad_keys() {
    let dir = TempDir::new();
    let key_path = dir.file("k.json");
    std::fs::write(&key_path, DEMO_KEY).unwrap();
    let bad = dir.file("bad.json");
    std::fs::write(&bad, r#"{"snapshotVersion": 2, "catalog": {"schemaVersion": 7}}"#).unwrap();
    let line = run_bad(&["sign", "--key", &key_path, &bad]);
    assert!(line.contains("is not a valid snapshot") && line.contains("/catalog/"), "{line}");
    let not_json = dir.file("not.json");
    std::fs::write(&not_json, "{").unwrap();
    assert!(run_bad(&["sign", "--key", &key_path, &not_json]).contains("invalid_json"));
    assert!(run_bad(&["sign", "--key", &key_path, "examples/llm-snapshot.signed.json"]).contains("already"));
    let broken_key = dir.file("broken-key.json");
    std::fs::write(&broken_key, r#"{"secretKey": "short"}"#).unwrap();
    assert!(
        run_bad(&["sign", "--key", &broken_key, "examples/llm-snapshot.json"]).contains("/secretKey: invalid_value")
    );
    let out = run(&["sign", "examples/llm-snapshot.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(run_bad(&["verify", "--public-key", "AAAA", "examples/llm-snapshot.signed.json"])
        .starts_with("tollgate: --public-key: invalid_value"));
}

#[test]
fn cli_verifies_the_committed_demo_envelope() {
    let demo = KeyPair::from_value(&value(DEMO_KEY)).unwrap();
    let out = run_ok(&["verify", "--public-key", &demo.public_key().to_base64(), "examples/llm-snapshot.signed.json"]);
    assert_eq!(out, "examples/llm-snapshot.signed.json: valid signature by key demo-hub, snapshotVersion 1\n");
    let signed = run_ok(&["sign", "--key", "examples/keys/demo-hub.json", "examples/llm-snapshot.json"]);
    assert_eq!(signed, DEMO_SIGNED);
}

#[test]
fn a_validly_signed_older_snapshot_is_refused() {
    use tollgate::engine::{Engine, Options};
    let key = pair(5);
    let signed = |version: u64| {
        let mut snapshot = value(SNAPSHOT);
        snapshot["snapshotVersion"] = json!(version);
        key.seal(serde_json::to_string(&snapshot).unwrap().as_bytes())
    };
    let options = Options { hub_public_key: Some(key.public_key()), ..Options::default() };
    let mut engine = Engine::from_snapshot(&signed(5), options).unwrap();
    // v4, signed by the same hub (a rollback, or an old response replayed), changes nothing.
    let errors = engine.apply_snapshot(&signed(4)).unwrap_err();
    assert_eq!((errors[0].code, errors[0].path.as_str()), (Code::StaleSnapshot, "/snapshotVersion"));
    assert_eq!(engine.snapshot_version(), 5);
    // The same version again, or a newer one, is taken.
    engine.apply_snapshot(&signed(5)).unwrap();
    engine.apply_snapshot(&signed(6)).unwrap();
    assert_eq!(engine.snapshot_version(), 6);
}
