//! The `/v1/sync` messages of SPEC §7: an edge's request (its lease counters and the usage
//! events the hub has not acknowledged) and the hub's response (grants, expiry, mode).
//!
//! Decoding reports every problem with its JSON pointer; encoding derives `Serialize`, with
//! decimals as strings and periods as RFC 3339 timestamps.
//!
//! A response travels plain or, from a hub with a signing key, as a signed envelope like a
//! snapshot's ([`crate::sync::signed`]) whose payload also names the edge run it answers
//! (`edgeId`, `bootId`): [`SyncResponse::open`] is what an edge does with what it received.

use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::{Code, Error};
use crate::json::{spelled, Fields, Problems};
use crate::sync::signed::{self, Opened, PublicKey};
use crate::time::Timestamp;

/// The `type` of the events an edge emits for `consume` calls, so the hub can bill them.
pub const CONSUME_EVENT: &str = "tollgate.consume";

/// The lease key of a wallet (SPEC §7: "metered feature or wallet"); not a valid feature key.
pub const WALLET_KEY: &str = "$wallet";

/// What a lease is for: one customer's metered feature (or wallet) in one usage period.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase"))]
pub struct LeaseKey {
    /// The customer.
    pub customer_id: String,
    /// A metered feature key, or [`WALLET_KEY`].
    pub key: String,
    /// Start of the usage period (the epoch for one-time entitlements and wallets).
    #[cfg_attr(feature = "ts", ts(type = "Timestamp"))]
    pub period: Timestamp,
}

/// One lease in an edge's request: its counters as the edge knows them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LeaseReport {
    /// The lease's key.
    #[serde(flatten, serialize_with = "key_fields")]
    pub key: LeaseKey,
    /// Which lease of this key (an edge opens a new epoch after one expires). Absent = 0.
    pub epoch: u32,
    /// Units used so far under this lease (cumulative).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub used: Decimal,
    /// Units given back to the hub (cumulative).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub returned: Decimal,
    /// The highest `granted` the edge has seen.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub granted_seen: Decimal,
    /// More units the edge would like granted.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub want: Decimal,
    /// The edge will never use this lease again: `used` is final.
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// An edge's sync request.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// The edge.
    pub edge_id: String,
    /// This run of the edge; counters restart with a new boot.
    pub boot_id: String,
    /// Grows with every request of a boot.
    pub seq: u64,
    /// The snapshot version the edge holds.
    pub catalog_version: u64,
    /// Every lease the edge holds or has yet to report final.
    pub leases: Vec<LeaseReport>,
    /// Usage events accepted at the edge and not yet acknowledged.
    pub events: Vec<Value>,
}

/// How the hub is granting a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Plenty left: edges may ask for chunks ahead of need.
    Normal,
    /// Near exhaustion: the hub grants only what is asked; edges ask for exact needs.
    Precise,
    /// The lease is over (final report received, or expired): never use it again.
    Closed,
}

spelled!(Mode { Normal => "normal", Precise => "precise", Closed => "closed" });

/// The hub's answer for one lease.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct LeaseGrant {
    /// The lease's key.
    #[serde(flatten, serialize_with = "key_fields")]
    pub key: LeaseKey,
    /// Which lease of this key.
    pub epoch: u32,
    /// Units granted so far (cumulative).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub granted: Decimal,
    /// How long the lease is valid, timed by the edge from when it sent the request; 0 = not
    /// renewed.
    pub ttl_ms: u64,
    /// How the hub is granting.
    pub mode: Mode,
    /// When set, the edge should give back units until at most this many are unused.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub shrink_to: Option<Decimal>,
    /// Units of this key used by everyone but this lease, as far as the hub knows: the edge's
    /// view of the key's usage is this plus its own `used` (an extension of SPEC §7).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub others_usage: Decimal,
    /// Of `granted`, the units reserved for use while the hub is unreachable (offline mode
    /// `allowance`; an extension of SPEC §7).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub allowance: Decimal,
    /// The key's whole budget (limit + tolerance; a wallet's funded money + credit limit), so
    /// the edge can tell a spent key from a lease to renew (an extension of SPEC §7).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub budget: Decimal,
}

/// The hub's sync response.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SyncResponse {
    /// The request answered (its `seq`); its events are in the hub's ledger.
    pub ack_seq: u64,
    /// One answer per lease of the request.
    pub leases: Vec<LeaseGrant>,
    /// A signed snapshot when the edge's `catalogVersion` is stale.
    pub snapshot: Option<Value>,
}

/// The edge run a sync response says it answers: the `edgeId` and `bootId` of the request,
/// written next to the response's fields. Required in a signed response (so a response signed
/// for one edge, or for an earlier run of it, is never taken by another), optional in a plain
/// one; when given, they must be the receiving engine's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Addressee {
    /// The edge answered.
    pub edge_id: Option<String>,
    /// The run of that edge answered.
    pub boot_id: Option<String>,
}

impl Addressee {
    /// Checks that the response is for `(edge_id, boot_id)`: `missing_field` when `required`
    /// and a field is absent, `invalid_value` when one names another edge or run. Paths are
    /// `{prefix}/edgeId` and `{prefix}/bootId`.
    pub fn check(&self, edge_id: &str, boot_id: &str, required: bool, prefix: &str) -> Result<(), Error> {
        for (field, given, own, what) in
            [("edgeId", &self.edge_id, edge_id, "edge"), ("bootId", &self.boot_id, boot_id, "run (boot) of this edge")]
        {
            let path = alloc::format!("{prefix}/{field}");
            match given {
                None if required => {
                    let message =
                        alloc::format!("a signed sync response must name the edge run it answers ({field} missing)");
                    return Err(Error::new(Code::MissingField, path, message));
                }
                Some(given) if given != own => {
                    let message = alloc::format!(
                        "this response answers {what} {given:?}, not this engine's {own:?}: it is not applied"
                    );
                    return Err(Error::new(Code::InvalidValue, path, message));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn key_fields<S: Serializer>(key: &LeaseKey, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields<'a> {
        customer_id: &'a str,
        key: &'a str,
        period: String,
    }
    Fields { customer_id: &key.customer_id, key: &key.key, period: key.period.to_rfc3339() }.serialize(s)
}

fn decode_key(f: &mut Fields<'_, '_>) -> Option<LeaseKey> {
    let customer_id = f.str("customerId");
    let key = f.str("key");
    let period = f.timestamp("period");
    Some(LeaseKey { customer_id: customer_id?, key: key?, period: period? })
}

fn epoch(f: &mut Fields<'_, '_>) -> Option<u32> {
    match f.opt_u64("epoch") {
        None => Some(0),
        Some(e) => match u32::try_from(e) {
            Ok(e) => Some(e),
            Err(_) => {
                f.fail("epoch", Code::InvalidValue, "epoch is too large");
                None
            }
        },
    }
}

fn counter(f: &mut Fields<'_, '_>, key: &str, required: bool) -> Option<Decimal> {
    let d = if required { f.decimal(key)? } else { f.opt_decimal(key).or(Some(Decimal::ZERO))? };
    if d < Decimal::ZERO {
        f.fail(key, Code::InvalidValue, "a lease counter must not be negative");
        return None;
    }
    Some(d)
}

fn finish<T>(value: Option<T>, problems: Problems) -> Result<T, Vec<Error>> {
    match value {
        Some(v) if problems.is_empty() => Ok(v),
        _ if problems.is_empty() => Err(alloc::vec![Error::new(Code::InvalidType, "", "expected an object")]),
        _ => Err(problems),
    }
}

impl LeaseReport {
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<LeaseReport> {
        let mut f = Fields::open(value, path, problems)?;
        let key = decode_key(&mut f);
        let epoch = epoch(&mut f);
        let used = counter(&mut f, "used", true);
        let returned = counter(&mut f, "returned", false);
        let granted_seen = counter(&mut f, "grantedSeen", false);
        let want = counter(&mut f, "want", false);
        let is_final = f.opt_bool("final").unwrap_or(false);
        f.finish();
        Some(LeaseReport {
            key: key?,
            epoch: epoch?,
            used: used?,
            returned: returned?,
            granted_seen: granted_seen?,
            want: want?,
            is_final,
        })
    }
}

impl SyncRequest {
    /// Who sent it, for [`Escrow::report`](super::Escrow::report).
    pub fn reporter(&self) -> super::Reporter<'_> {
        super::Reporter { edge_id: &self.edge_id, boot_id: &self.boot_id }
    }

    /// Decodes a request, reporting every problem with its path.
    pub fn from_value(value: &Value) -> Result<SyncRequest, Vec<Error>> {
        let mut problems = Problems::new();
        let request = Self::decode(value, &mut problems);
        finish(request, problems)
    }

    fn decode(value: &Value, problems: &mut Problems) -> Option<SyncRequest> {
        let mut f = Fields::open(value, "", problems)?;
        let edge_id = f.str("edgeId");
        let boot_id = f.str("bootId");
        let seq = f.opt_u64("seq");
        if f.raw("seq").is_none() {
            f.fail("seq", Code::MissingField, "\"seq\" is required");
        }
        let catalog_version = f.opt_u64("catalogVersion").unwrap_or(0);
        let mut leases = Vec::new();
        for (v, path) in f.opt_array("leases").unwrap_or_default() {
            let report = LeaseReport::decode(v, &path, f.problems());
            leases.extend(report);
        }
        let events = f.opt_array("events").unwrap_or_default().into_iter().map(|(v, _)| v.clone()).collect();
        f.finish();
        if edge_id.as_deref() == Some("") {
            problems.push(Error::new(Code::InvalidValue, "/edgeId", "edgeId must not be empty"));
        }
        Some(SyncRequest { edge_id: edge_id?, boot_id: boot_id?, seq: seq?, catalog_version, leases, events })
    }
}

impl SyncResponse {
    /// Decodes a plain response, reporting every problem with its path. `edgeId` and `bootId`
    /// are accepted and not checked (see [`SyncResponse::addressed`] and [`SyncResponse::open`]).
    pub fn from_value(value: &Value) -> Result<SyncResponse, Vec<Error>> {
        Self::addressed(value).map(|(response, _)| response)
    }

    /// Decodes a plain response and the edge run it says it answers.
    pub fn addressed(value: &Value) -> Result<(SyncResponse, Addressee), Vec<Error>> {
        let mut problems = Problems::new();
        let response = Self::decode(value, &mut problems);
        finish(response, problems)
    }

    /// What an edge does with what it received from `/v1/sync`, in either form, as the engine
    /// run `(edge_id, boot_id)`:
    ///
    /// - a signed envelope (`{ payload, signature, keyId }`, as a snapshot's) is checked against
    ///   `key` when one is given (`bad_signature`); its payload is the response, which must name
    ///   this edge run (`edgeId`, `bootId`: `missing_field`, or `invalid_value` for another edge
    ///   or an earlier run). Errors inside the payload have paths under `/payload`.
    /// - a plain response is refused with `unsigned_snapshot` (path `""`) when `key` is given;
    ///   without a key it is decoded, and `edgeId`/`bootId`, if present, must be this run's.
    ///
    /// An embedded `snapshot` is not opened here: it is a snapshot (a signed envelope of its own
    /// when the hub signs), checked as one when it is applied.
    pub fn open(
        value: &Value,
        key: Option<&PublicKey>,
        edge_id: &str,
        boot_id: &str,
    ) -> Result<SyncResponse, Vec<Error>> {
        match signed::open(value, key).map_err(|e| alloc::vec![e])? {
            Opened::Plain(v) => {
                let (response, to) = Self::addressed(v)?;
                to.check(edge_id, boot_id, false, "").map_err(|e| alloc::vec![e])?;
                Ok(response)
            }
            Opened::Signed { envelope, verified } => {
                let v = signed::parse_payload(&envelope.payload).map_err(|e| alloc::vec![e])?;
                let (response, to) = Self::addressed(&v)
                    .map_err(|errs| errs.into_iter().map(|e| e.under("/payload")).collect::<Vec<_>>())?;
                to.check(edge_id, boot_id, verified, "/payload").map_err(|e| alloc::vec![e])?;
                Ok(response)
            }
        }
    }

    fn decode(value: &Value, problems: &mut Problems) -> Option<(SyncResponse, Addressee)> {
        let mut f = Fields::open(value, "", problems)?;
        let ack_seq = f.opt_u64("ackSeq");
        if f.raw("ackSeq").is_none() {
            f.fail("ackSeq", Code::MissingField, "\"ackSeq\" is required");
        }
        let mut leases = Vec::new();
        for (v, path) in f.opt_array("leases").unwrap_or_default() {
            leases.extend(LeaseGrant::decode(v, &path, f.problems()));
        }
        let snapshot = f.opt("snapshot").map(|(v, _)| v.clone());
        let to = Addressee { edge_id: f.opt_str("edgeId"), boot_id: f.opt_str("bootId") };
        // The hub's list of refused leases and events (`{ code, path, message }`, and how many
        // more were left out): informative for the client; the edge acts on the `closed`
        // answers those leases get.
        f.opt("problems");
        f.opt("problemsOmitted");
        f.finish();
        Some((SyncResponse { ack_seq: ack_seq?, leases, snapshot }, to))
    }
}

impl LeaseGrant {
    fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<LeaseGrant> {
        let mut f = Fields::open(value, path, problems)?;
        let key = decode_key(&mut f);
        let epoch = epoch(&mut f);
        let granted = counter(&mut f, "granted", true);
        let ttl_ms = f.opt_u64("ttlMs").unwrap_or(0);
        let mode = f.opt_spelled::<Mode>("mode").unwrap_or(Mode::Normal);
        let shrink_to = match f.opt_decimal("shrinkTo") {
            Some(d) if d < Decimal::ZERO => {
                f.fail("shrinkTo", Code::InvalidValue, "shrinkTo must not be negative");
                None
            }
            other => other,
        };
        let others_usage = counter(&mut f, "othersUsage", false);
        let allowance = counter(&mut f, "allowance", false);
        let budget = f.opt_decimal("budget");
        f.finish();
        Some(LeaseGrant {
            key: key?,
            epoch: epoch?,
            granted: granted?,
            ttl_ms,
            mode,
            shrink_to,
            others_usage: others_usage?,
            allowance: allowance?,
            budget: budget.unwrap_or(Decimal::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_request_and_response_round_trip() {
        let request: Value = serde_json::from_str(
            r#"{ "edgeId": "fra-1", "bootId": "b7c1", "seq": 42, "catalogVersion": 7,
                 "leases": [{ "customerId": "cus_acme", "key": "tokens", "period": "2026-11-01T00:00:00Z",
                              "used": "1660", "returned": "0", "grantedSeen": "2000", "want": "2000", "final": false }],
                 "events": [] }"#,
        )
        .unwrap();
        let r = SyncRequest::from_value(&request).unwrap();
        assert_eq!(r.seq, 42);
        assert_eq!(r.leases[0].used, Decimal::from(1660));
        assert_eq!(r.leases[0].epoch, 0);
        let again = SyncRequest::from_value(&serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(again, r);

        let response: Value = serde_json::from_str(
            r#"{ "ackSeq": 42, "leases": [{ "customerId": "cus_acme", "key": "tokens", "period": "2026-11-01T00:00:00Z",
                 "granted": "4000", "ttlMs": 30000, "mode": "normal", "shrinkTo": null }], "snapshot": null }"#,
        )
        .unwrap();
        let s = SyncResponse::from_value(&response).unwrap();
        assert_eq!(s.leases[0].granted, Decimal::from(4000));
        assert_eq!(s.leases[0].ttl_ms, 30000);
        assert_eq!(SyncResponse::from_value(&serde_json::to_value(&s).unwrap()).unwrap(), s);
    }

    #[test]
    fn every_problem_has_a_path() {
        let bad: Value = serde_json::from_str(
            r#"{ "edgeId": "", "bootId": 3, "leases": [{ "customerId": "c", "key": "k", "period": "soon",
                 "used": "-1", "extra": true }] }"#,
        )
        .unwrap();
        let errors = SyncRequest::from_value(&bad).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for p in ["/bootId", "/seq", "/leases/0/period", "/leases/0/used", "/leases/0/extra", "/edgeId"] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
    }
}
