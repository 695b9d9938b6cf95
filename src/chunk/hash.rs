//! Content hashes for message and chunk ids.
//!
//! Built on the crate's one stable hash (128-bit FNV-1a, `crate::hash`), so ids are the same on
//! every run and every machine.

use crate::hash::Fnv128;

/// Builds a hash from a sequence of fields.
#[derive(Debug, Clone)]
pub(crate) struct IdHasher(Fnv128);

impl IdHasher {
    pub(crate) fn new() -> Self {
        Self(Fnv128::new())
    }

    /// Adds one field. A 0xff byte (never present in UTF-8) ends each field, so ("ab", "c") and
    /// ("a", "bc") hash differently.
    pub(crate) fn field(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        self.0.update(bytes.as_ref());
        self.0.update(&[0xff]);
        self
    }

    /// The hash as 32 lowercase hex digits.
    pub(crate) fn hex(&self) -> String {
        format!("{:032x}", self.0.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_matter() {
        let a = IdHasher::new().field("ab").field("c").hex();
        let b = IdHasher::new().field("a").field("bc").hex();
        assert_ne!(a, b);
        assert_eq!(a, IdHasher::new().field("ab").field("c").hex());
    }
}
