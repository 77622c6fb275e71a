//! The made start of a large network: every node's table drawn from all the others, and every
//! service's entry already on its closest nodes, as a network that has run for a while would
//! have them — so a million nodes start in their steady state instead of simulating how they
//! got there. Smaller runs check it against nodes that joined through the protocol.

use crate::engine::Sim;
use crate::model::{Entry, Peer, mix};
use rand::Rng as _;

impl Sim {
    /// Draws every honest node's table from all nodes: up to k of the nodes of each bucket's
    /// range, at random.
    pub(crate) fn make_tables(&mut self) {
        let mut all: Vec<u64> = self.slots.iter().map(|s| s.key).collect();
        all.sort_unstable();
        let k = self.config.params.k;
        let refresh = self.config.params.refresh_ms;
        for n in 0..self.slots.len() {
            if self.slots[n].sybil {
                continue;
            }
            let me = self.slots[n].key;
            let mut contacts = Vec::with_capacity(k * 24);
            for prefix in 0..64u32 {
                let shift = 63 - prefix;
                let lo = ((me >> shift) ^ 1) << shift;
                let hi = lo | ((1u64 << shift) - 1);
                let from = all.partition_point(|x| *x < lo);
                let to = all.partition_point(|x| *x <= hi);
                let count = to - from;
                if count <= k {
                    contacts.extend(all[from..to].iter().map(|x| Peer(*x)));
                } else {
                    let mut picked: Vec<usize> = Vec::with_capacity(k);
                    while picked.len() < k {
                        let i = from + (self.rng.next_u64() % count as u64) as usize;
                        if !picked.contains(&i) {
                            picked.push(i);
                        }
                    }
                    contacts.extend(picked.into_iter().map(|i| Peer(all[i])));
                }
                // Past the nearest neighbour every deeper bucket is empty.
                let sharing = all.partition_point(|x| *x <= (me | ((1u64 << shift) - 1)))
                    - all.partition_point(|x| *x < (me & !((1u64 << shift) - 1)));
                if sharing <= 1 {
                    break;
                }
            }
            let now = self.now;
            let spread = mix(me);
            if let Some(dht) = self.slots[n].dht.as_mut() {
                let table = dht.table_mut();
                table.fill(contacts, now);
                table.set_touched(|i| now.saturating_sub(mix(spread ^ i as u64) % refresh.max(1)));
            }
        }
    }

    /// Stores every honest node's services on the honest nodes among the closest to each
    /// service's key, as a provide would have, each due for republishing at a random time of
    /// the next period: the network starts in its steady state.
    pub(crate) fn make_entries(&mut self, honest: u32, republish: u64) {
        let mut all: Vec<u64> = self.slots.iter().map(|s| s.key).collect();
        all.sort_unstable();
        let r = self.config.params.replication;
        for n in 0..honest {
            for _ in 0..self.config.services_per_node {
                let key = self.rng.next_u64();
                // The r closest lie in the smallest subtree around the key holding r nodes.
                let mut prefix = 64u32;
                let (mut from, mut to) = (0, 0);
                while prefix > 0 {
                    prefix -= 1;
                    let mask = if prefix == 0 {
                        0
                    } else {
                        u64::MAX << (64 - prefix)
                    };
                    from = all.partition_point(|x| *x < (key & mask));
                    to = all.partition_point(|x| *x <= (key | !mask));
                    if to - from >= r {
                        break;
                    }
                }
                let mut near: Vec<u64> = all[from..to].to_vec();
                near.sort_unstable_by_key(|x| x ^ key);
                near.truncate(r);
                let made = self.now - self.rng.next_u64() % republish.max(1);
                let entry = Entry {
                    provider: self.slots[n as usize].key,
                    issued_ms: made,
                    expires_ms: made + self.config.entry_ttl_ms,
                };
                let now = self.now;
                for holder in near {
                    let Some(&h) = self.index.get(&holder) else {
                        continue;
                    };
                    if let Some(dht) = self.slots[h as usize].dht.as_mut() {
                        let _ = dht.store_mut().add(key, entry, now);
                    }
                }
                if let Some(dht) = self.slots[n as usize].dht.as_mut() {
                    dht.provided(key, made + republish);
                }
                self.service_at.insert(key, self.services.len());
                self.services.push((key, n));
                self.slots[n as usize].provides.push(key);
            }
        }
    }
}
