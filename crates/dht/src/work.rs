//! Node keys that cost work to make. A node's key in the DHT is the hash of its public key and a
//! nonce, and only keys whose own hash starts with enough zero bits are accepted: a node pays
//! for its key once (a fraction of a second), someone cycling keys to surround a victim pays for
//! every one, and to land near a chosen key pays that many times over (S/Kademlia's puzzle).

use crate::key::Id;
use sha2::{Digest as _, Sha256};

/// The DHT key of the node with public key `public` and nonce `nonce`.
pub fn node_key(public: &[u8; 32], nonce: u64) -> Id {
    let mut hash = Sha256::new();
    hash.update(b"micro/dht/node/1\0");
    hash.update(public);
    hash.update(nonce.to_le_bytes());
    Id(hash.finalize().into())
}

/// The work a key carries: the leading zero bits of its hash.
pub fn work_of(key: &Id) -> u32 {
    let digest: [u8; 32] = Sha256::new()
        .chain_update(b"micro/dht/work/1\0")
        .chain_update(key.0)
        .finalize()
        .into();
    let mut bits = 0;
    for b in digest {
        if b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// The first nonce from `start` whose key carries `bits` of work, and that key.
pub fn solve(public: &[u8; 32], bits: u32, start: u64) -> (u64, Id) {
    let mut nonce = start;
    loop {
        let key = node_key(public, nonce);
        if work_of(&key) >= bits {
            return (nonce, key);
        }
        nonce = nonce.wrapping_add(1);
    }
}

/// The key of `public` with `nonce` if it carries at least `bits` of work.
pub fn check(public: &[u8; 32], nonce: u64, bits: u32) -> Option<Id> {
    let key = node_key(public, nonce);
    (work_of(&key) >= bits).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solved_nonce_checks_and_others_do_not() {
        let public = [7u8; 32];
        let (nonce, key) = solve(&public, 10, 0);
        assert_eq!(check(&public, nonce, 10), Some(key));
        assert!(work_of(&key) >= 10);
        // Another key with the same nonce is another id, almost surely without the work.
        let mut found_failure = false;
        for n in 0..64 {
            if check(&public, nonce + 1 + n, 10).is_none() {
                found_failure = true;
                break;
            }
        }
        assert!(found_failure, "1 in 1024 nonces carry 10 bits");
        assert_eq!(
            check(&[8u8; 32], nonce, 10).map(|_| ()).is_some(),
            work_of(&node_key(&[8u8; 32], nonce)) >= 10
        );
    }
}
