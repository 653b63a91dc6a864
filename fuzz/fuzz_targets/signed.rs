//! Signed snapshots (SPEC §7): the envelope `{ payload, signature, keyId }` opened with and
//! without the hub's public key (`signed::open`, `open_value`), its payload parsed and decoded as
//! a snapshot; the strict base64 decoder; key files and public keys as the CLI reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::engine::Snapshot;
use tollgate::sync::signed::{self, KeyPair, Opened, PublicKey};

const DEMO_PUBLIC_KEY: &str = "6RRKGBteqhMQm41FnCH0SWElx2GAMfUo0mbM4aUYBxw=";

fuzz_target!(|data: &[u8]| {
    let Some(text) = tollgate_fuzz::text(data) else { return };
    let _ = signed::decode_base64(text);
    let _ = PublicKey::parse(text);
    let Some(value) = tollgate_fuzz::json(text) else { return };
    let key = PublicKey::parse(DEMO_PUBLIC_KEY).expect("the demo key");
    let _ = signed::open(&value, Some(&key));
    if let Ok(Opened::Signed { envelope, .. }) = signed::open(&value, None) {
        let _ = envelope.to_value();
        let _ = envelope.verify(&key);
        if let Ok(payload) = signed::parse_payload(&envelope.payload) {
            let _ = Snapshot::from_value(&payload);
        }
    }
    let _ = signed::open_value(value.clone(), Some(&key));
    if let Ok(pair) = KeyPair::from_value(&value) {
        let _ = pair.to_value();
        let _ = pair.seal(b"{}");
    }
});
