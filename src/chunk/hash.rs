//! Content hashes for message and chunk ids.
//!
//! Ids must be the same on every run and every machine, so std's randomly seeded hasher is out.
//! 128-bit FNV-1a is a few lines, has no dependency, and at 128 bits a collision among even
//! billions of messages is not a practical concern. It is not a cryptographic hash: ids identify
//! content, they do not protect it.

const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// Builds a hash from a sequence of fields.
#[derive(Debug, Clone)]
pub(crate) struct IdHasher(u128);

impl IdHasher {
    pub(crate) fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    /// Adds one field. A 0xff byte (never present in UTF-8) ends each field, so ("ab", "c") and
    /// ("a", "bc") hash differently.
    pub(crate) fn field(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        for &b in bytes.as_ref() {
            self.byte(b);
        }
        self.byte(0xff);
        self
    }

    fn byte(&mut self, b: u8) {
        self.0 ^= u128::from(b);
        self.0 = self.0.wrapping_mul(PRIME);
    }

    /// The hash as 32 lowercase hex digits.
    pub(crate) fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_128_known_value() {
        // FNV-1a 128 of the empty input is the offset basis; of "a" it is this published value.
        let mut h = IdHasher::new();
        h.byte(b'a');
        assert_eq!(format!("{:032x}", h.0), "d228cb696f1a8caf78912b704e4a8964");
    }

    #[test]
    fn field_boundaries_matter() {
        let a = IdHasher::new().field("ab").field("c").hex();
        let b = IdHasher::new().field("a").field("bc").hex();
        assert_ne!(a, b);
        assert_eq!(a, IdHasher::new().field("ab").field("c").hex());
    }
}
