//! The answer to "may this customer use this feature" (SPEC §5). Denials are values.

use alloc::string::String;
use alloc::sync::Arc;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::catalog::FeatureType;
use crate::money::plain;
use crate::time::Timestamp;

/// Why a decision came out as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Allowed.
    Ok,
    /// The customer's plans do not include the feature.
    NoEntitlement,
    /// The customer has no active subscription (and no grant for the feature).
    NotSubscribed,
    /// No such customer.
    UnknownCustomer,
    /// No feature with that key in the catalog.
    UnknownFeature,
    /// A hard limit: the balance does not cover the request.
    LimitReached,
    /// The edge's lease is used up: sync, then retry.
    LeaseExhausted,
    /// The edge's lease has expired.
    LeaseExpired,
    /// No valid lease and the offline mode denies.
    Offline,
}

impl Reason {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::NoEntitlement => "no_entitlement",
            Reason::NotSubscribed => "not_subscribed",
            Reason::UnknownCustomer => "unknown_customer",
            Reason::UnknownFeature => "unknown_feature",
            Reason::LimitReached => "limit_reached",
            Reason::LeaseExhausted => "lease_exhausted",
            Reason::LeaseExpired => "lease_expired",
            Reason::Offline => "offline",
        }
    }
}

/// Figures of a metered feature at the time of a decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
// In TypeScript, the four fields a decision always has (null without figures; see `figures`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Balance {
    /// Units left (Σ remaining of active grants).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub balance: Decimal,
    /// Units used this period.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub usage: Decimal,
    /// Units used past the balance (soft limits).
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub overage: Decimal,
    /// Units issued for this period.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString | null"))]
    pub limit: Decimal,
    /// When the usage period ends and the balance resets (RFC 3339); null for a meter that
    /// never resets, and for decisions without figures.
    #[cfg_attr(feature = "ts", ts(rename = "resetAt", type = "string | null"))]
    pub reset_at: Option<Timestamp>,
}

/// A decision. Cheap to build: the key and config are shared, figures are plain decimals.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "DecisionJSON"))]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// May the customer go ahead.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The feature asked about.
    #[serde(serialize_with = "as_str")]
    pub feature_key: Arc<str>,
    /// Its type, when the feature exists.
    pub feature_type: Option<FeatureType>,
    /// Metered figures (null for other types and denials before a balance is known).
    #[serde(flatten, serialize_with = "figures")]
    // In TypeScript, `Balance`'s four fields (tests/types.rs puts them here).
    #[cfg_attr(feature = "ts", ts(skip))]
    pub figures: Option<Balance>,
    /// Static configuration.
    pub config: Option<Arc<Value>>,
    /// False when the answer rests on a lease or a stale snapshot rather than the full balance.
    pub exact: bool,
    /// True when the edge should sync soon (lease low or expired).
    pub needs_sync: bool,
    /// The customer's wallet as this engine knows it, on a `consume` its wallet pays (a feature
    /// whose metric an instant price charges): allowed or denied, the balance is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional, as = "Option<WalletView>"))]
    pub wallet: Option<alloc::boxed::Box<WalletView>>,
}

impl Decision {
    /// A decision without figures.
    pub fn plain(allowed: bool, reason: Reason, key: Arc<str>, feature_type: Option<FeatureType>) -> Decision {
        Decision {
            allowed,
            reason,
            feature_key: key,
            feature_type,
            figures: None,
            config: None,
            exact: true,
            needs_sync: false,
            wallet: None,
        }
    }
}

fn as_str<S: Serializer>(k: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k)
}

fn figures<S: Serializer>(b: &Option<Balance>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(5))?;
    let field = |d: Decimal| Some(plain(d));
    let (balance, usage, overage, limit) = match b {
        Some(b) => (field(b.balance), field(b.usage), field(b.overage), field(b.limit)),
        None => (None, None, None, None),
    };
    m.serialize_entry("balance", &balance)?;
    m.serialize_entry("usage", &usage)?;
    m.serialize_entry("overage", &overage)?;
    m.serialize_entry("limit", &limit)?;
    m.serialize_entry("resetAt", &b.and_then(|b| b.reset_at).map(Timestamp::to_rfc3339))?;
    m.end()
}

/// A wallet as an engine knows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct WalletView {
    /// ISO-4217 code.
    pub currency: &'static str,
    /// The balance: with leases, the hub's last word less what this edge spent since (others'
    /// spending since then is not known yet); without, the engine's own.
    #[cfg_attr(feature = "ts", ts(type = "DecimalString"))]
    pub balance: String,
    /// With leases: money of the current wallet lease still usable while it is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString", optional))]
    pub leased: Option<String>,
    /// With leases: money spent under the current wallet lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "DecimalString", optional))]
    pub spent: Option<String>,
}
