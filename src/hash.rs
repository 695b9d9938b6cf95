//! 128-bit FNV-1a: the one stable hash behind message ids, chunk ids, record-id sets, shard
//! assignment and input fingerprints.
//!
//! Those must be the same on every run and every machine, forever, so std's hasher (unspecified
//! algorithm, randomly seeded) is out. FNV-1a is a few lines with no dependency, and at 128 bits
//! accidental collisions are out of reach for any corpus (about 1e-20 for ten million ids). It
//! is not a cryptographic hash: ids identify content, they do not protect it.

const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const PRIME: u128 = (1 << 88) + 0x13b;

/// A running 128-bit FNV-1a over byte chunks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv128(u128);

impl Fnv128 {
    pub(crate) fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u128::from(byte)).wrapping_mul(PRIME);
        }
    }

    pub(crate) fn finish(self) -> u128 {
        self.0
    }
}

/// 128-bit FNV-1a of `bytes` in one call.
#[cfg_attr(not(feature = "job"), allow(dead_code))]
pub(crate) fn fnv1a_128(bytes: &[u8]) -> u128 {
    let mut hash = Fnv128::new();
    hash.update(bytes);
    hash.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_test_vectors() {
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }

    #[test]
    fn running_hash_matches_one_shot() {
        let mut running = Fnv128::new();
        running.update("héllo ".as_bytes());
        running.update("wörld".as_bytes());
        assert_eq!(running.finish(), fnv1a_128("héllo wörld".as_bytes()));
    }
}
