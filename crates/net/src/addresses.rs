//! The endpoint's address book, bounded. Records, DHT contacts, provider entries and tickets
//! all tell the endpoint how to reach a node (so gossip and dials by id find it); every one of
//! those sources can be fed by strangers, so the book keeps the most recently told
//! [`MAX_ADDRESSES`] nodes and forgets the rest — except the nodes this node joined through or
//! found on its LAN, which are few and never forgotten.

use iroh::address_lookup::memory::MemoryLookup;
use iroh::{EndpointAddr, PublicKey};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Nodes whose addresses the book keeps at most, besides the pinned ones.
pub const MAX_ADDRESSES: usize = 4096;

/// The address book the endpoint dials by.
pub struct AddressBook {
    lookup: MemoryLookup,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When each node was last told, by a counter.
    told: HashMap<PublicKey, u64>,
    pinned: HashSet<PublicKey>,
    clock: u64,
}

impl AddressBook {
    /// A book in front of `lookup` (the endpoint's own).
    pub fn new(lookup: MemoryLookup) -> Self {
        Self {
            lookup,
            state: Mutex::default(),
        }
    }

    /// Adds what `addr` says; `pinned` keeps it for good (a ticket's or the LAN's node).
    pub fn add(&self, addr: EndpointAddr, pinned: bool) {
        if addr.is_empty() {
            return;
        }
        let id = addr.id;
        self.lookup.add_endpoint_info(addr);
        let mut state = micro_base::sync::lock(&self.state);
        if pinned {
            state.told.remove(&id);
            state.pinned.insert(id);
            return;
        }
        if state.pinned.contains(&id) {
            return;
        }
        state.clock += 1;
        let now = state.clock;
        state.told.insert(id, now);
        if state.told.len() > MAX_ADDRESSES {
            // The least recently told goes; one pass evicts a tenth, so this is rare.
            let mut by_age: Vec<(u64, PublicKey)> =
                state.told.iter().map(|(id, at)| (*at, *id)).collect();
            by_age.sort_unstable();
            for (_, old) in by_age.into_iter().take(MAX_ADDRESSES / 10) {
                state.told.remove(&old);
                self.lookup.remove_endpoint_info(old);
            }
        }
    }

    /// Forgets node `id` (a node that said goodbye), unless it is pinned.
    pub fn forget(&self, id: &PublicKey) {
        let mut state = micro_base::sync::lock(&self.state);
        if state.told.remove(id).is_some() {
            self.lookup.remove_endpoint_info(*id);
        }
    }

    /// Nodes in the book.
    pub fn len(&self) -> usize {
        let state = micro_base::sync::lock(&self.state);
        state.told.len() + state.pinned.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the book can dial `id`.
    pub fn knows(&self, id: &PublicKey) -> bool {
        self.lookup.get_endpoint_info(*id).is_some()
    }

    /// How to reach `id`, as the book knows it.
    pub fn get(&self, id: &PublicKey) -> Option<EndpointAddr> {
        self.lookup
            .get_endpoint_info(*id)
            .map(|info| info.into_endpoint_addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iroh::TransportAddr;

    fn addr(i: u64) -> EndpointAddr {
        let mut seed = [1u8; 32];
        seed[..8].copy_from_slice(&i.to_le_bytes());
        let id = iroh::SecretKey::from_bytes(&seed).public();
        EndpointAddr::from_parts(
            id,
            [TransportAddr::Ip(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                4000,
            )))],
        )
    }

    #[test]
    fn the_book_keeps_the_most_recently_told_and_every_pinned_node() {
        let book = AddressBook::new(MemoryLookup::new());
        book.add(addr(0), true);
        for i in 1..=(MAX_ADDRESSES as u64 + 1) {
            book.add(addr(i), false);
        }
        // Told again just before the book overflowed: kept.
        book.add(addr(1), false);
        for i in (MAX_ADDRESSES as u64 + 2)..(MAX_ADDRESSES as u64 + 50) {
            book.add(addr(i), false);
        }
        assert!(book.len() <= MAX_ADDRESSES + 1, "{}", book.len());
        assert!(book.knows(&addr(0).id), "a pinned node stays");
        assert!(book.knows(&addr(1).id), "told again lately");
        assert!(!book.knows(&addr(2).id), "the least recently told went");
        assert!(book.knows(&addr(MAX_ADDRESSES as u64 + 49).id));
        book.forget(&addr(1).id);
        assert!(!book.knows(&addr(1).id));
        book.forget(&addr(0).id);
        assert!(book.knows(&addr(0).id), "pinned nodes are not forgotten");
    }
}
