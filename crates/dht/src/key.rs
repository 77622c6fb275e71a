//! Points of the key space and their XOR distance. Nodes and the things they provide live in
//! one space; who keeps what is decided by closeness in it. The protocol is generic over the
//! key so that a simulator can run a million nodes with 8-byte keys through the same code the
//! node runs with 32-byte ones.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::hash::Hash;

/// A point in the key space. Distance is XOR, compared as an unsigned number.
pub trait Key: Copy + Eq + Ord + Hash + fmt::Debug {
    /// Bits in a key.
    const BITS: u32;
    /// Bytes a key takes on the wire.
    const WIRE_BYTES: usize;
    /// The XOR of two keys, comparable as a number.
    type Distance: Ord + Copy + fmt::Debug;

    /// The distance between two keys.
    fn distance(&self, other: &Self) -> Self::Distance;

    /// How many leading bits two keys share (`BITS` when they are equal): the index of the
    /// bucket one keeps the other in.
    fn common_prefix(&self, other: &Self) -> u32;

    /// Bit `index` from the most significant (`index < BITS`).
    fn bit(&self, index: u32) -> bool;

    /// A key sharing exactly `prefix` leading bits with this one, the rest from `random`: a
    /// target for refreshing the bucket of that index.
    fn in_bucket(&self, prefix: u32, random: &Self) -> Self;

    /// A key made of the words `next` gives (randomness for refresh targets).
    fn from_words(next: &mut dyn FnMut() -> u64) -> Self;
}

/// A 256-bit key: a node's id (the hash of its public key and its work nonce) or the hash of a
/// name it provides.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// The key of a name (a service, `name@version`, a topic), in a namespace of its own so
    /// that a name never lands on a node id by construction.
    pub fn of_name(namespace: &str, name: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"micro/dht/name/1\0");
        hash.update(namespace.as_bytes());
        hash.update([0]);
        hash.update(name.as_bytes());
        Self(hash.finalize().into())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..5] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Key for Id {
    const BITS: u32 = 256;
    const WIRE_BYTES: usize = 32;
    type Distance = [u8; 32];

    fn from_words(next: &mut dyn FnMut() -> u64) -> Self {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&next().to_le_bytes());
        }
        Self(out)
    }

    fn distance(&self, other: &Self) -> [u8; 32] {
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        d
    }

    fn common_prefix(&self, other: &Self) -> u32 {
        for i in 0..32 {
            let x = self.0[i] ^ other.0[i];
            if x != 0 {
                return i as u32 * 8 + x.leading_zeros();
            }
        }
        Self::BITS
    }

    fn bit(&self, index: u32) -> bool {
        let index = index.min(Self::BITS - 1) as usize;
        self.0[index / 8] & (0x80u8 >> (index % 8)) != 0
    }

    fn in_bucket(&self, prefix: u32, random: &Self) -> Self {
        let prefix = prefix.min(Self::BITS - 1) as usize;
        let mut out = random.0;
        for bit in 0..=prefix {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let mine = self.0[byte] & mask;
            let want = if bit == prefix { mine ^ mask } else { mine };
            out[byte] = (out[byte] & !mask) | want;
        }
        Self(out)
    }
}

impl Key for u64 {
    const BITS: u32 = 64;
    // The simulator's 8-byte keys stand for the node's 32-byte ones in its byte counts.
    const WIRE_BYTES: usize = 32;
    type Distance = u64;

    fn from_words(next: &mut dyn FnMut() -> u64) -> Self {
        next()
    }

    fn distance(&self, other: &Self) -> u64 {
        self ^ other
    }

    fn common_prefix(&self, other: &Self) -> u32 {
        (self ^ other).leading_zeros()
    }

    fn bit(&self, index: u32) -> bool {
        (self >> (63 - index.min(63))) & 1 == 1
    }

    fn in_bucket(&self, prefix: u32, random: &Self) -> Self {
        let prefix = prefix.min(63);
        let keep = if prefix == 0 {
            0
        } else {
            u64::MAX << (64 - prefix)
        };
        let flip = 1u64 << (63 - prefix);
        ((self & keep) | (random & !keep & !flip)) | (!self & flip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_targets_share_exactly_the_prefix() {
        let me = Id([0xa5; 32]);
        let random = Id([0x3c; 32]);
        for prefix in [0, 1, 7, 8, 9, 100, 255] {
            let t = me.in_bucket(prefix, &random);
            assert_eq!(me.common_prefix(&t), prefix, "prefix {prefix}");
        }
        let me = 0xa5a5_a5a5_a5a5_a5a5u64;
        for prefix in [0, 1, 7, 8, 9, 40, 63] {
            let t = me.in_bucket(prefix, &0x3c3c_3c3c_3c3c_3c3c);
            assert_eq!(me.common_prefix(&t), prefix, "prefix {prefix}");
        }
    }

    #[test]
    fn distance_orders_like_a_number() {
        let a = Id([0; 32]);
        let mut b = [0u8; 32];
        b[31] = 1;
        let mut c = [0u8; 32];
        c[0] = 1;
        assert!(a.distance(&Id(b)) < a.distance(&Id(c)));
        assert_eq!(a.common_prefix(&Id(c)), 7);
        assert_eq!(a.common_prefix(&a), 256);
        assert_ne!(
            Id::of_name("service", "hello"),
            Id::of_name("topic", "hello")
        );
    }

    #[test]
    fn the_first_differing_bit_is_at_the_common_prefix() {
        let me = Id([0xa5; 32]);
        let random = Id([0x3c; 32]);
        for prefix in [0, 1, 7, 8, 9, 100, 255] {
            let t = me.in_bucket(prefix, &random);
            assert_ne!(me.bit(prefix), t.bit(prefix), "prefix {prefix}");
            assert!(
                (0..prefix).all(|i| me.bit(i) == t.bit(i)),
                "prefix {prefix}"
            );
        }
        let me = 0xa5a5_a5a5_a5a5_a5a5u64;
        assert!(me.bit(0) && !me.bit(1) && me.bit(63));
        for prefix in [0, 1, 7, 40, 63] {
            let t = me.in_bucket(prefix, &0x3c3c_3c3c_3c3c_3c3c);
            assert_ne!(me.bit(prefix), t.bit(prefix), "prefix {prefix}");
        }
    }
}
