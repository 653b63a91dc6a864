//! The price models of SPEC §3.2 and their decoding from JSON, with every local check
//! (tiers ascending, last tier open, no negative prices) done while decoding.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::Code;
use crate::json::{Fields, JsonPath, Problems};

/// One tier of a tiered model. `up_to: None` is the open last tier.
#[derive(Clone, Debug, PartialEq)]
pub struct Tier {
    /// Inclusive upper bound of the tier.
    pub up_to: Option<Decimal>,
    /// Price per unit inside the tier (a fraction for `graduated_percentage`).
    pub unit_price: Decimal,
    /// Charged once when the tier is reached.
    pub flat_price: Decimal,
}

/// How `package` rounds a partial package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageRounding {
    /// A started package is charged (default).
    Up,
    /// Only complete packages are charged.
    Down,
}

/// Where a `dynamic` model takes each unit's price from.
#[derive(Clone, Debug, PartialEq)]
pub enum DynamicSource {
    /// The event's own property (e.g. `$.unit_price`); out of bounds rejects the event.
    EventProperty(JsonPath),
    /// A market rate of the catalog's `rates`; out of bounds is clamped.
    Rate(String),
}

/// The `percentage` model's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Percentage {
    /// Fraction of each event's value (0.029 = 2.9 %).
    pub rate: Decimal,
    /// Added to each paying event.
    pub fixed_fee: Decimal,
    /// Floor of a paying event's cost.
    pub min_per_event: Option<Decimal>,
    /// Cap of a paying event's cost.
    pub max_per_event: Option<Decimal>,
    /// The first this-many events are free (0 = no such allowance).
    pub free_events: Decimal,
    /// The first this-much cumulative value is free (0 = no such allowance).
    pub free_amount: Decimal,
}

/// A price model (SPEC §3.2).
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    /// `amount × quantity`.
    Flat {
        /// Price of one.
        amount: Decimal,
    },
    /// `q × unitPrice`.
    PerUnit {
        /// Price of one unit.
        unit_price: Decimal,
    },
    /// Started (or complete) packages of `package_size` units after `free_units`.
    Package {
        /// Units per package (> 0).
        package_size: Decimal,
        /// Price of one package.
        package_price: Decimal,
        /// Units free before the first package.
        free_units: Decimal,
        /// Whether a partial package is charged.
        rounding: PackageRounding,
    },
    /// Each unit at the price of the tier it falls in.
    Graduated {
        /// Ascending tiers, the last open.
        tiers: Vec<Tier>,
    },
    /// Every unit at the price of the tier of the total.
    Volume {
        /// Ascending tiers, the last open.
        tiers: Vec<Tier>,
    },
    /// A share of each event's value.
    Percentage(Percentage),
    /// Graduated, with a rate per tier (`Tier::unit_price` holds the rate).
    GraduatedPercentage {
        /// Ascending tiers, the last open.
        tiers: Vec<Tier>,
    },
    /// A unit price from the event or from a market rate.
    Dynamic {
        /// Where the unit price comes from.
        source: DynamicSource,
        /// Lowest acceptable unit price.
        min_price: Option<Decimal>,
        /// Highest acceptable unit price.
        max_price: Option<Decimal>,
    },
    /// A model per value of one dimension.
    Matrix {
        /// A `groupBy` name of the price's metric.
        dimension: String,
        /// Model per dimension value.
        cells: BTreeMap<String, Model>,
        /// Model for values without a cell.
        default: Option<Box<Model>>,
    },
}

const TYPES: &[&str] =
    &["flat", "per_unit", "package", "graduated", "volume", "percentage", "graduated_percentage", "dynamic", "matrix"];

impl Model {
    /// The `type` tag of this model.
    pub fn type_name(&self) -> &'static str {
        match self {
            Model::Flat { .. } => "flat",
            Model::PerUnit { .. } => "per_unit",
            Model::Package { .. } => "package",
            Model::Graduated { .. } => "graduated",
            Model::Volume { .. } => "volume",
            Model::Percentage(_) => "percentage",
            Model::GraduatedPercentage { .. } => "graduated_percentage",
            Model::Dynamic { .. } => "dynamic",
            Model::Matrix { .. } => "matrix",
        }
    }

    /// True for models that price each event on its own (they need events, not totals).
    pub fn is_per_event(&self) -> bool {
        match self {
            Model::Percentage(_) | Model::Dynamic { .. } => true,
            Model::Matrix { cells, default, .. } => {
                cells.values().any(Model::is_per_event) || default.as_deref().is_some_and(Model::is_per_event)
            }
            _ => false,
        }
    }

    /// Decodes and checks a model object at `path`; problems go to `problems`.
    pub fn decode(value: &Value, path: &str, problems: &mut Problems) -> Option<Model> {
        let mut f = Fields::open(value, path, problems)?;
        let kind = f.choice("type", TYPES);
        let model = match kind? {
            0 => f.decimal("amount").map(|amount| Model::Flat { amount }),
            1 => price(&mut f, "unitPrice", true).map(|unit_price| Model::PerUnit { unit_price }),
            2 => decode_package(&mut f),
            3 => tiers(&mut f).map(|tiers| Model::Graduated { tiers }),
            4 => tiers(&mut f).map(|tiers| Model::Volume { tiers }),
            5 => decode_percentage(&mut f).map(Model::Percentage),
            6 => tiers(&mut f).map(|tiers| Model::GraduatedPercentage { tiers }),
            7 => decode_dynamic(&mut f),
            _ => decode_matrix(&mut f),
        };
        f.finish();
        model
    }
}

/// A price field that must not be negative.
fn price(f: &mut Fields<'_, '_>, key: &str, required: bool) -> Option<Decimal> {
    let d = if required { f.decimal(key)? } else { f.opt_decimal(key)? };
    if d < Decimal::ZERO {
        f.fail(key, Code::NegativePrice, format!("{key} must not be negative"));
    }
    Some(d)
}

fn opt_price(f: &mut Fields<'_, '_>, key: &str) -> Option<Decimal> {
    price(f, key, false)
}

fn decode_package(f: &mut Fields<'_, '_>) -> Option<Model> {
    let package_size = f.decimal("packageSize");
    if package_size.is_some_and(|s| s <= Decimal::ZERO) {
        f.fail("packageSize", Code::InvalidPackageSize, "packageSize must be positive");
    }
    let package_price = price(f, "packagePrice", true);
    let free_units = opt_price(f, "freeUnits").unwrap_or_default();
    let rounding = match f.opt_choice("rounding", &["up", "down"]) {
        Some(1) => PackageRounding::Down,
        _ => PackageRounding::Up,
    };
    Some(Model::Package { package_size: package_size?, package_price: package_price?, free_units, rounding })
}

fn tiers(f: &mut Fields<'_, '_>) -> Option<Vec<Tier>> {
    let items = f.array("tiers")?;
    if items.is_empty() {
        f.fail("tiers", Code::EmptyTiers, "at least one tier is required");
        return None;
    }
    let last = items.len() - 1;
    let mut out = Vec::with_capacity(items.len());
    let mut previous: Option<Decimal> = None;
    for (i, (item, path)) in items.into_iter().enumerate() {
        let problems = f.problems();
        let Some(mut t) = Fields::open(item, &path, problems) else {
            continue;
        };
        let up_to = t.opt_decimal("upTo");
        let has_up_to = t.opt("upTo").is_some();
        // `unitPrice` and `rate` are the same number; tiers may spell it either way.
        let unit = opt_price(&mut t, "unitPrice");
        let rate = opt_price(&mut t, "rate");
        if unit.is_some() && rate.is_some() {
            t.fail("rate", Code::InvalidValue, "give unitPrice or rate, not both");
        }
        let flat_price = opt_price(&mut t, "flatPrice").unwrap_or_default();
        match (i == last, up_to) {
            (true, Some(_)) => t.fail("upTo", Code::LastTierBounded, "the last tier must have upTo: null"),
            (false, None) if !has_up_to => {
                t.fail("upTo", Code::UnboundedTierNotLast, "only the last tier may be unbounded")
            }
            (_, Some(u)) => {
                let ascending = match previous {
                    Some(p) => u > p,
                    None => u >= Decimal::ZERO,
                };
                if !ascending {
                    t.fail("upTo", Code::TiersNotAscending, "upTo must be greater than the previous tier's");
                }
                previous = Some(u);
            }
            _ => {}
        }
        t.finish();
        out.push(Tier {
            up_to: if i == last { None } else { up_to },
            unit_price: unit.or(rate).unwrap_or_default(),
            flat_price,
        });
    }
    Some(out)
}

fn decode_percentage(f: &mut Fields<'_, '_>) -> Option<Percentage> {
    let rate = price(f, "rate", true);
    let fixed_fee = opt_price(f, "fixedFee").unwrap_or_default();
    let min_per_event = opt_price(f, "minPerEvent");
    let max_per_event = opt_price(f, "maxPerEvent");
    if let (Some(lo), Some(hi)) = (min_per_event, max_per_event) {
        if lo > hi {
            f.fail("minPerEvent", Code::MinGreaterThanMax, "minPerEvent is above maxPerEvent");
        }
    }
    let free_events = opt_price(f, "freeEvents").unwrap_or_default();
    if free_events.fract() != Decimal::ZERO {
        f.fail("freeEvents", Code::InvalidValue, "freeEvents must be a whole number");
    }
    let free_amount = opt_price(f, "freeAmount").unwrap_or_default();
    Some(Percentage { rate: rate?, fixed_fee, min_per_event, max_per_event, free_events, free_amount })
}

fn decode_dynamic(f: &mut Fields<'_, '_>) -> Option<Model> {
    let source = f.req("source").and_then(|(v, path)| {
        let mut s = Fields::open(v, &path, f.problems())?;
        let (has_property, has_rate) = (s.opt("eventProperty").is_some(), s.opt("rate").is_some());
        let property = s.opt_json_path("eventProperty");
        let rate = s.opt_str("rate");
        let source = match (property, rate) {
            (Some(p), None) => Some(DynamicSource::EventProperty(p)),
            (None, Some(r)) => Some(DynamicSource::Rate(r)),
            // One of them was given but is malformed: that problem is already recorded.
            _ if has_property != has_rate => None,
            _ => {
                s.push(crate::error::Error::new(
                    Code::InvalidValue,
                    path.clone(),
                    "source needs exactly one of eventProperty and rate",
                ));
                None
            }
        };
        s.finish();
        source
    });
    let min_price = opt_price(f, "minPrice");
    let max_price = opt_price(f, "maxPrice");
    if let (Some(lo), Some(hi)) = (min_price, max_price) {
        if lo > hi {
            f.fail("minPrice", Code::MinGreaterThanMax, "minPrice is above maxPrice");
        }
    }
    Some(Model::Dynamic { source: source?, min_price, max_price })
}

fn decode_matrix(f: &mut Fields<'_, '_>) -> Option<Model> {
    let dimension = f.str("dimension");
    let mut cells = BTreeMap::new();
    let mut ok = f.opt("cells").is_some();
    let mut cell = |f: &mut Fields<'_, '_>, v: &Value, path: &str| match Model::decode(v, path, f.problems()) {
        Some(Model::Matrix { .. }) => {
            f.push(crate::error::Error::new(Code::NotAllowedHere, path, "a matrix cell cannot be another matrix"));
            ok = false;
            None
        }
        Some(m) => Some(m),
        None => {
            ok = false;
            None
        }
    };
    match f.opt_object("cells") {
        Some(entries) => {
            for (key, v, path) in entries {
                if let Some(m) = cell(f, v, &path) {
                    cells.insert(String::from(key), m);
                }
            }
        }
        None if f.opt("cells").is_none() => f.fail("cells", Code::MissingField, "\"cells\" is required"),
        None => {} // present but not an object: already recorded
    }
    let default = match f.opt("default") {
        Some((v, path)) => cell(f, v, &path).map(Box::new),
        None => None,
    };
    ok.then_some(())?;
    Some(Model::Matrix { dimension: dimension?, cells, default })
}
