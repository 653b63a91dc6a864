//! Enums whose JSON form is one string per variant: each spelling is written once, in the
//! [`spelled!`] invocation next to the enum, and both read ([`Fields::spelled`]) and written
//! (`as_str`) from there.

use alloc::vec::Vec;

use super::Fields;

/// An enum with one JSON string per variant (implemented by [`spelled!`]).
pub trait Spelled: Copy + 'static {
    /// Every variant with its spelling, in the order errors list them.
    const SPELLINGS: &'static [(Self, &'static str)];
}

/// Implements `as_str`, `SPELLINGS` and [`Spelled`] for a field-less enum from one list of
/// `Variant => "spelling"` pairs.
macro_rules! spelled {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The JSON spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl $crate::json::Spelled for $ty {
            const SPELLINGS: &'static [($ty, &'static str)] = &[$(($ty::$variant, $text)),+];
        }
    };
}
pub(crate) use spelled;

impl Fields<'_, '_> {
    /// A required field spelled as one of `T`'s variants.
    pub fn spelled<T: Spelled>(&mut self, key: &str) -> Option<T> {
        let names: Vec<&str> = T::SPELLINGS.iter().map(|&(_, s)| s).collect();
        self.choice(key, &names).and_then(|i| T::SPELLINGS.get(i)).map(|&(v, _)| v)
    }

    /// An optional field spelled as one of `T`'s variants.
    pub fn opt_spelled<T: Spelled>(&mut self, key: &str) -> Option<T> {
        let names: Vec<&str> = T::SPELLINGS.iter().map(|&(_, s)| s).collect();
        self.opt_choice(key, &names).and_then(|i| T::SPELLINGS.get(i)).map(|&(v, _)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::Spelled;
    use crate::catalog::FeatureType;
    use crate::sync::Mode;

    /// The enums that also derive `Serialize` (their serde spelling feeds the generated
    /// TypeScript declarations) write what `spelled!` reads.
    fn serde_spells_as_listed<T: Spelled + serde::Serialize>() {
        for &(v, text) in T::SPELLINGS {
            assert_eq!(serde_json::to_value(v).ok(), Some(serde_json::Value::from(text)));
        }
    }

    #[test]
    fn serde_and_spelled_agree() {
        serde_spells_as_listed::<FeatureType>();
        serde_spells_as_listed::<Mode>();
    }
}
