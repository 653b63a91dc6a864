//! The one error type of the crate: a machine-readable [`Code`], the JSON path of the input
//! that caused it (RFC 6901 pointer, `""` for the whole input) and a human sentence.

use alloc::string::String;
use core::fmt;

/// What went wrong, as a stable snake_case code (see `docs/errors.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    // ---- shape of the input
    /// The text is not JSON.
    InvalidJson,
    /// A value has the wrong JSON type.
    InvalidType,
    /// A required field is absent.
    MissingField,
    /// A field that the format does not define.
    UnknownField,
    /// A value outside the allowed set (an enum, a range).
    InvalidValue,
    /// Not a decimal number.
    InvalidDecimal,
    /// Not an RFC 3339 UTC timestamp.
    InvalidTimestamp,
    /// Not a supported ISO-8601 duration.
    InvalidDuration,
    /// Not a dotted JSONPath (`$.a.b`).
    InvalidJsonPath,
    /// A schema version this build does not read.
    UnsupportedSchemaVersion,
    // ---- catalog semantics
    /// Two objects share an id.
    DuplicateId,
    /// Two features of one product share a key.
    DuplicateKey,
    /// An id that names nothing in the catalog.
    UnknownReference,
    /// A feature key that is not kebab-case.
    InvalidFeatureKey,
    /// An ISO-4217 code this build does not know.
    UnknownCurrency,
    /// A price, rate or amount below zero where that is not allowed.
    NegativePrice,
    /// Tier bounds that do not strictly increase.
    TiersNotAscending,
    /// The last tier has an `upTo` (it must be `null`).
    LastTierBounded,
    /// A tier other than the last has `upTo: null`.
    UnboundedTierNotLast,
    /// A tiered model without tiers.
    EmptyTiers,
    /// `packageSize` is not positive.
    InvalidPackageSize,
    /// A lower bound above its upper bound (quantities, prices, rollovers).
    MinGreaterThanMax,
    /// An aggregation other than `COUNT` without `valueProperty`.
    MissingValueProperty,
    /// A price must name exactly one of `metricId` and `feeId`.
    MetricOrFeeRequired,
    /// A metered feature linked by a price that has no billable metric.
    MeteredFeatureWithoutMetric,
    /// An entitlement template whose type differs from its feature's type.
    EntitlementTypeMismatch,
    /// A matrix `dimension` that is not a `groupBy` of the price's metric.
    UnknownDimension,
    /// A field or model that does not apply to this kind of price.
    NotAllowedHere,
    /// `grantDiscount` on a price whose metric has no metered feature in the plan.
    GrantDiscountWithoutFeature,
    // ---- rating
    /// A negative quantity given to a model that rejects it.
    NegativeQuantity,
    /// An event's own price outside `[minPrice, maxPrice]`.
    PriceOutOfBounds,
    /// A matrix value with no cell and no default.
    NoPriceForDimension,
    /// A model that prices individual events was given totals only.
    EventsRequired,
    /// A market rate that the catalog does not carry.
    UnknownRate,
    /// An event lacks a property the price needs, or it is not a number.
    MissingProperty,
    /// A plan id that the catalog does not have.
    UnknownPlan,
    /// A result too large to represent exactly.
    Overflow,
    /// An answer that could not be written as JSON: a fault of ours, never of the input.
    Unencodable,
    // ---- events and entitlements
    /// An event older than the idempotency window (it could not be deduplicated).
    EventTooOld,
    /// An idempotency id (an event's `(source, id)`, a `consume` id, a top-up key) reused with
    /// another payload: the first result stands and the new request is refused.
    IdempotencyMismatch,
    /// A handle from before the customer was redefined or removed: resolve it again.
    StaleHandle,
    // ---- signed snapshots
    /// A snapshot older than the one the engine holds (a rollback or a replayed old one).
    StaleSnapshot,
    /// A plain snapshot or sync response where a hub public key is configured (only a signed one is accepted).
    UnsignedSnapshot,
    /// A signature (of a snapshot or a sync response) that does not match its payload under the configured key.
    BadSignature,
    // ---- the hub's HTTP API
    /// A request without a valid token (HTTP 401).
    Unauthorized,
    /// A token that may not use this route: an edge token on an admin route (HTTP 403).
    Forbidden,
    /// No such resource: a customer, a route, a file (HTTP 404).
    NotFound,
    /// The request contradicts the hub's state: a duplicate grant id, an idempotency key reused
    /// for another request, no catalog yet (HTTP 409).
    Conflict,
    /// An invoice asked to close before its period ended (HTTP 409).
    PeriodOpen,
    /// A request body over the hub's limit (HTTP 413).
    PayloadTooLarge,
    /// The hub's database failed; nothing of the request was acknowledged (HTTP 500).
    Storage,
}

impl Code {
    /// The stable snake_case spelling used in JSON, the CLI and the JS `TollgateError.code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::InvalidJson => "invalid_json",
            Code::InvalidType => "invalid_type",
            Code::MissingField => "missing_field",
            Code::UnknownField => "unknown_field",
            Code::InvalidValue => "invalid_value",
            Code::InvalidDecimal => "invalid_decimal",
            Code::InvalidTimestamp => "invalid_timestamp",
            Code::InvalidDuration => "invalid_duration",
            Code::InvalidJsonPath => "invalid_json_path",
            Code::UnsupportedSchemaVersion => "unsupported_schema_version",
            Code::DuplicateId => "duplicate_id",
            Code::DuplicateKey => "duplicate_key",
            Code::UnknownReference => "unknown_reference",
            Code::InvalidFeatureKey => "invalid_feature_key",
            Code::UnknownCurrency => "unknown_currency",
            Code::NegativePrice => "negative_price",
            Code::TiersNotAscending => "tiers_not_ascending",
            Code::LastTierBounded => "last_tier_bounded",
            Code::UnboundedTierNotLast => "unbounded_tier_not_last",
            Code::EmptyTiers => "empty_tiers",
            Code::InvalidPackageSize => "invalid_package_size",
            Code::MinGreaterThanMax => "min_greater_than_max",
            Code::MissingValueProperty => "missing_value_property",
            Code::MetricOrFeeRequired => "metric_or_fee_required",
            Code::MeteredFeatureWithoutMetric => "metered_feature_without_metric",
            Code::EntitlementTypeMismatch => "entitlement_type_mismatch",
            Code::UnknownDimension => "unknown_dimension",
            Code::NotAllowedHere => "not_allowed_here",
            Code::GrantDiscountWithoutFeature => "grant_discount_without_feature",
            Code::NegativeQuantity => "negative_quantity",
            Code::PriceOutOfBounds => "price_out_of_bounds",
            Code::NoPriceForDimension => "no_price_for_dimension",
            Code::EventsRequired => "events_required",
            Code::UnknownRate => "unknown_rate",
            Code::MissingProperty => "missing_property",
            Code::UnknownPlan => "unknown_plan",
            Code::Overflow => "overflow",
            Code::Unencodable => "unencodable",
            Code::EventTooOld => "event_too_old",
            Code::IdempotencyMismatch => "idempotency_mismatch",
            Code::StaleHandle => "stale_handle",
            Code::StaleSnapshot => "stale_snapshot",
            Code::UnsignedSnapshot => "unsigned_snapshot",
            Code::BadSignature => "bad_signature",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::Conflict => "conflict",
            Code::PeriodOpen => "period_open",
            Code::PayloadTooLarge => "payload_too_large",
            Code::Storage => "storage",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed error: `code` for programs, `path` into the input, `message` for people.
#[derive(Clone, Debug, PartialEq, Eq)]
// In TypeScript, the `{ code, path, message }` the JS API reports a problem as.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "Problem"))]
pub struct Error {
    /// What went wrong.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub code: Code,
    /// JSON pointer into the offending input, e.g. `/plans/0/prices/2/model/tiers/1/upTo`.
    pub path: String,
    /// A one-line explanation.
    pub message: String,
}

impl Error {
    /// An error at `path`. Out of line (and cold): errors are off every fast path, and the call
    /// is shorter than the two conversions it would inline at each of its many call sites.
    #[cold]
    #[inline(never)]
    pub fn new(code: Code, path: impl Into<String>, message: impl Into<String>) -> Self {
        Error { code, path: path.into(), message: message.into() }
    }

    /// The same error, its path prefixed by `prefix` (a pointer of the enclosing input).
    pub fn under(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.path.insert_str(0, prefix);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "/" } else { &self.path };
        write!(f, "{path}: {} ({})", self.code, self.message)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
