//! The in-house pieces the no_std core keeps for size (RFC 3339 timestamps, strict base64) held
//! against well-kept references on generated inputs: `jiff` and `base64`.

use base64::Engine as _;
use jiff::Timestamp as Reference;
use proptest::prelude::*;
use tollgate::sync::signed::{decode_base64, encode_base64};
use tollgate::time::Timestamp;

/// jiff's instant in milliseconds, rounded down as ours is (extra fraction digits are dropped,
/// and a fraction always counts forward in time).
fn reference_ms(text: &str) -> Option<i64> {
    let t: Reference = text.parse().ok()?;
    i64::try_from(t.as_nanosecond().div_euclid(1_000_000)).ok()
}

/// RFC 3339 texts, mostly valid, with the edges of each field: day 29–31 of every month, leap
/// years, hour 23, minute and second 59, 1 to 9 fraction digits, `Z`/`z`, `t`, offsets.
fn rfc3339() -> impl Strategy<Value = String> {
    let date = (0i64..=9999, 1u32..=12, 1u32..=31);
    let time = (0u32..=23, 0u32..=59, 0u32..=59);
    let fraction = prop_oneof![Just(String::new()), "\\.[0-9]{1,9}"];
    let offset = prop_oneof![
        Just("Z".to_string()),
        Just("z".to_string()),
        (prop::bool::ANY, 0u32..=23, 0u32..=59)
            .prop_map(|(plus, h, m)| format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' })),
    ];
    let t = prop_oneof![Just('T'), Just('t')];
    (date, t, time, fraction, offset)
        .prop_map(|((y, mo, d), t, (h, mi, s), f, o)| format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}{f}{o}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Every RFC 3339 text of the grammar: ours accepts it exactly when jiff does (an impossible
    /// date such as 2026-02-30 is refused by both) and reads the same instant.
    #[test]
    fn timestamps_parse_as_jiff_parses_them(text in rfc3339()) {
        prop_assert_eq!(Timestamp::parse(&text).map(|t| t.0), reference_ms(&text), "{}", text);
    }

    /// Anything ours accepts, jiff reads as the same instant (jiff accepts more forms; ours keeps
    /// to the strict profile).
    #[test]
    fn whatever_we_accept_jiff_reads_the_same(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?([Zz]|[+-][0-9]{2}:?[0-9]{2})?") {
        if let Some(ours) = Timestamp::parse(&text) {
            prop_assert_eq!(Some(ours.0), reference_ms(&text), "{}", text);
        }
    }

    /// What we print, jiff reads back as the same instant; and we read it back too.
    #[test]
    fn printed_timestamps_read_back(ms in -62_135_596_800_000i64..253_402_300_799_999) {
        let text = Timestamp(ms).to_rfc3339();
        prop_assert_eq!(reference_ms(&text), Some(ms), "{}", text);
        prop_assert_eq!(Timestamp::parse(&text), Some(Timestamp(ms)));
    }

    /// Encoding agrees byte for byte with the `base64` crate's standard engine.
    #[test]
    fn base64_encodes_as_the_base64_crate(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        prop_assert_eq!(encode_base64(&bytes), base64::engine::general_purpose::STANDARD.encode(&bytes));
    }

    /// Decoding accepts exactly what the standard engine accepts (padding required, canonical
    /// trailing bits) and gives the same bytes, on texts near the alphabet.
    #[test]
    fn base64_decodes_as_the_base64_crate(text in "[A-Za-z0-9+/=_\\- \n]{0,24}") {
        let reference = base64::engine::general_purpose::STANDARD.decode(&text).ok();
        prop_assert_eq!(decode_base64(&text).ok(), reference, "{:?}", text);
    }

    /// And on the encodings of random bytes with one character changed.
    #[test]
    fn base64_decodes_altered_encodings_as_the_base64_crate(
        bytes in prop::collection::vec(any::<u8>(), 1..60), at in any::<prop::sample::Index>(), c in "[A-Za-z0-9+/=]",
    ) {
        let mut text = base64::engine::general_purpose::STANDARD.encode(&bytes).into_bytes();
        let i = at.index(text.len());
        text[i] = c.as_bytes()[0];
        let text = String::from_utf8(text).unwrap();
        let reference = base64::engine::general_purpose::STANDARD.decode(&text).ok();
        prop_assert_eq!(decode_base64(&text).ok(), reference, "{:?}", text);
    }
}

/// A leap second is refused by ours (jiff reads `:60` as `:59`); noted so the difference is a
/// decision, not an accident.
#[test]
fn a_leap_second_is_refused() {
    assert_eq!(Timestamp::parse("2016-12-31T23:59:60Z"), None);
    assert!(reference_ms("2016-12-31T23:59:60Z").is_some());
}
