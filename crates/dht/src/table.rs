//! The routing table: k-buckets by shared prefix with this node's key. Only contacts that
//! answered this node themselves get in (a third party's word makes a lookup candidate, never
//! a table entry); a full bucket keeps its old contacts while they answer (old contacts are the
//! likeliest to stay, and a flood of new keys cannot push them out); a bucket holds few
//! contacts of one address group. Its size is bounded by k × the bits of a key, whatever the
//! size of the network; in practice k × log2(N / k).

use crate::key::Key;
use crate::peer::Contact;

/// One contact in a bucket.
#[derive(Debug, Clone)]
pub struct Entry<C> {
    /// The contact.
    pub contact: C,
    /// When it last answered or asked, in seconds of the protocol's clock.
    seen_s: u32,
    /// Requests it failed in a row.
    fails: u8,
}

#[derive(Debug)]
struct Bucket<C> {
    /// Least recently seen first.
    entries: Vec<Entry<C>>,
    /// A contact waiting for a place while the least recently seen is checked.
    waiting: Option<C>,
    /// When a lookup last went into this bucket's range, in seconds.
    touched_s: u32,
}

impl<C: Contact> Bucket<C> {
    /// Contacts of address group `group` in the bucket.
    fn of_group(&self, group: u64) -> usize {
        self.entries
            .iter()
            .filter(|e| e.contact.group() == group)
            .count()
    }

    fn new(now_s: u32) -> Self {
        Self {
            entries: Vec::new(),
            waiting: None,
            touched_s: now_s,
        }
    }

    /// Adds a contact to a bucket with room.
    fn push(&mut self, contact: C, now_s: u32, k: usize) {
        if self.entries.len() == self.entries.capacity() {
            // Doubling, but never past k: a full bucket holds exactly k, not the next power
            // of two (a third of the table, wasted, at k = 20).
            let len = self.entries.len();
            self.entries.reserve_exact(len.max(2).min(k - len));
        }
        self.entries.push(Entry {
            contact,
            seen_s: now_s,
            fails: 0,
        });
    }
}

/// What became of a contact offered to the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard<C> {
    /// It was in already, and was seen again.
    In,
    /// It is new to the table, and in now.
    Added,
    /// Its bucket is full: check whether this contact, its least recently seen, still answers;
    /// the offered one takes its place if it does not.
    Check(C),
    /// Its bucket is full and a check is under way, or its address group has its share: not
    /// kept.
    Dropped,
}

/// Failures in a row after which a contact leaves the table.
const MAX_FAILS: u8 = 2;

/// A node's routing table.
#[derive(Debug)]
pub struct Table<C: Contact> {
    me: C::Key,
    k: usize,
    per_group: usize,
    buckets: Vec<Bucket<C>>,
    len: usize,
}

fn secs(now_ms: u64) -> u32 {
    (now_ms / 1000).min(u64::from(u32::MAX)) as u32
}

impl<C: Contact> Table<C> {
    /// An empty table of node `me`, `k` contacts a bucket, at most `per_group` of one address
    /// group in a bucket.
    pub fn new(me: C::Key, k: usize, per_group: usize) -> Self {
        Self {
            me,
            k: k.max(1),
            per_group: per_group.max(1),
            buckets: Vec::new(),
            len: 0,
        }
    }

    /// This node's key.
    pub fn me(&self) -> C::Key {
        self.me
    }

    /// Contacts in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No contact yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Buckets in use (the deepest one holding a contact, plus one).
    pub fn depth(&self) -> u32 {
        self.buckets.len() as u32
    }

    /// The contacts of every bucket, nearest buckets last.
    pub fn contacts(&self) -> impl Iterator<Item = &C> {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| &e.contact))
    }

    /// How many contacts each bucket holds, from the farthest.
    pub fn bucket_sizes(&self) -> Vec<usize> {
        self.buckets.iter().map(|b| b.entries.len()).collect()
    }

    fn index(&self, key: &C::Key) -> Option<usize> {
        let prefix = self.me.common_prefix(key);
        (prefix < <C::Key as Key>::BITS).then_some(prefix as usize)
    }

    fn bucket_mut(&mut self, index: usize, now_s: u32) -> &mut Bucket<C> {
        while self.buckets.len() <= index {
            self.buckets.push(Bucket::new(now_s));
        }
        &mut self.buckets[index]
    }

    /// Offers a contact that answered or asked this node itself.
    pub fn heard(&mut self, contact: C, now_ms: u64) -> Heard<C> {
        let key = contact.key();
        let Some(index) = self.index(&key) else {
            return Heard::Dropped;
        };
        if !contact.valid() {
            return Heard::Dropped;
        }
        let (k, per_group) = (self.k, self.per_group);
        let now_s = secs(now_ms);
        let bucket = self.bucket_mut(index, now_s);
        if let Some(at) = bucket.entries.iter().position(|e| e.contact.key() == key) {
            let mut entry = bucket.entries.remove(at);
            entry.contact = contact;
            entry.seen_s = now_s;
            entry.fails = 0;
            bucket.entries.push(entry);
            return Heard::In;
        }
        if bucket.of_group(contact.group()) >= per_group {
            return Heard::Dropped;
        }
        if bucket.entries.len() < k {
            bucket.push(contact, now_s, k);
            self.len += 1;
            return Heard::Added;
        }
        if bucket.waiting.is_some() {
            return Heard::Dropped;
        }
        bucket.waiting = Some(contact);
        Heard::Check(bucket.entries[0].contact.clone())
    }

    /// A contact in the table answered: it stays, seen now.
    pub fn answered(&mut self, key: &C::Key, now_ms: u64) {
        let Some(index) = self.index(key) else {
            return;
        };
        let Some(bucket) = self.buckets.get_mut(index) else {
            return;
        };
        if let Some(at) = bucket.entries.iter().position(|e| e.contact.key() == *key) {
            let mut entry = bucket.entries.remove(at);
            entry.seen_s = secs(now_ms);
            entry.fails = 0;
            bucket.entries.push(entry);
            if at == 0 {
                // It was the one checked: the waiting contact is not needed.
                bucket.waiting = None;
            }
        }
    }

    /// A contact failed a request; it leaves after a few in a row, or at once when another
    /// waits for its place. The waiting contact, if any, takes the place.
    pub fn failed(&mut self, key: &C::Key, now_ms: u64) {
        let Some(index) = self.index(key) else {
            return;
        };
        let (k, per_group) = (self.k, self.per_group);
        let Some(bucket) = self.buckets.get_mut(index) else {
            return;
        };
        let Some(at) = bucket.entries.iter().position(|e| e.contact.key() == *key) else {
            return;
        };
        let entry = &mut bucket.entries[at];
        entry.fails = entry.fails.saturating_add(1);
        if entry.fails < MAX_FAILS && bucket.waiting.is_none() {
            return;
        }
        bucket.entries.remove(at);
        self.len -= 1;
        if let Some(waiting) = bucket.waiting.take()
            && bucket.of_group(waiting.group()) < per_group
        {
            bucket.push(waiting, secs(now_ms), k);
            self.len += 1;
        }
        while self.buckets.last().is_some_and(|b| b.entries.is_empty()) {
            self.buckets.pop();
        }
    }

    /// Removes a contact (it said it is leaving, or it misbehaved).
    pub fn remove(&mut self, key: &C::Key) {
        let Some(index) = self.index(key) else {
            return;
        };
        if let Some(bucket) = self.buckets.get_mut(index)
            && let Some(at) = bucket.entries.iter().position(|e| e.contact.key() == *key)
        {
            bucket.entries.remove(at);
            self.len -= 1;
        }
    }

    /// The contact of `key`, if it is in the table.
    pub fn get(&self, key: &C::Key) -> Option<&C> {
        let index = self.index(key)?;
        self.buckets
            .get(index)?
            .entries
            .iter()
            .find(|e| e.contact.key() == *key)
            .map(|e| &e.contact)
    }

    /// Up to `n` contacts closest to `target`, closest first. The buckets are visited in the
    /// order of their distance to the target and each is sorted on its own, so a lookup's
    /// answer sorts a bucket or two, not the table.
    pub fn closest(&self, target: &C::Key, n: usize) -> Vec<C> {
        let mut out: Vec<C> = Vec::with_capacity(n);
        let take = |out: &mut Vec<C>, bucket: &Bucket<C>| {
            if out.len() >= n || bucket.entries.is_empty() {
                return;
            }
            let mut entries: Vec<&Entry<C>> = bucket.entries.iter().collect();
            entries.sort_unstable_by_key(|e| target.distance(&e.contact.key()));
            let room = n - out.len();
            out.extend(entries.into_iter().take(room).map(|e| e.contact.clone()));
        };
        let split = self.me.common_prefix(target) as usize;
        // The target's own bucket is nearest.
        if let Some(bucket) = self.buckets.get(split) {
            take(&mut out, bucket);
        }
        // A deeper bucket j is nearer the target than every bucket past it when the target
        // is on its contacts' side of bit j (where this node is not), and farther than all
        // of them otherwise: the near ones by depth, then the far ones from
        // the deepest back.
        let deeper = self.buckets.get(split + 1..).unwrap_or_default();
        let near = |j: usize| self.me.bit(j as u32) != target.bit(j as u32);
        for (j, bucket) in deeper.iter().enumerate().map(|(i, b)| (split + 1 + i, b)) {
            if near(j) {
                take(&mut out, bucket);
            }
        }
        for (j, bucket) in deeper
            .iter()
            .enumerate()
            .rev()
            .map(|(i, b)| (split + 1 + i, b))
        {
            if !near(j) {
                take(&mut out, bucket);
            }
        }
        // Then the shallower ones, nearest first.
        for bucket in self.buckets[..split.min(self.buckets.len())].iter().rev() {
            take(&mut out, bucket);
        }
        out
    }

    /// How many contacts are closer to `target` than this node is: a node asked to store
    /// under a key refuses when it knows k closer ones.
    pub fn closer_than_me(&self, target: &C::Key) -> usize {
        let split = self.me.common_prefix(target) as usize;
        let mine = self.me.distance(target);
        let mut count = self.buckets.get(split).map_or(0, |b| b.entries.len());
        for bucket in self.buckets.iter().skip(split + 1) {
            count += bucket
                .entries
                .iter()
                .filter(|e| e.contact.key().distance(target) < mine)
                .count();
        }
        count
    }

    /// How many contacts are closer to `target` than `distance`.
    pub fn closer_than(&self, target: &C::Key, distance: &<C::Key as Key>::Distance) -> usize {
        self.buckets
            .iter()
            .flat_map(|b| &b.entries)
            .filter(|e| e.contact.key().distance(target) < *distance)
            .count()
    }

    /// A lookup went into the range of the bucket `target` falls in.
    pub fn touch(&mut self, target: &C::Key, now_ms: u64) {
        if let Some(index) = self.index(target)
            && let Some(bucket) = self.buckets.get_mut(index)
        {
            bucket.touched_s = secs(now_ms);
        }
    }

    /// Puts contacts straight into their buckets, up to k each, without the checks a sighting
    /// goes through: a simulator's made start (the contacts must be distinct and valid).
    pub fn fill(&mut self, contacts: impl IntoIterator<Item = C>, now_ms: u64) {
        let now_s = secs(now_ms);
        let k = self.k;
        for contact in contacts {
            let Some(index) = self.index(&contact.key()) else {
                continue;
            };
            let bucket = self.bucket_mut(index, now_s);
            if bucket.entries.len() < k {
                bucket.push(contact, now_s, k);
                self.len += 1;
            }
        }
    }

    /// Sets when every bucket was last looked into (a simulator starting from a made table
    /// spreads the refreshes over time this way).
    pub fn set_touched(&mut self, mut at_ms: impl FnMut(usize) -> u64) {
        for (i, bucket) in self.buckets.iter_mut().enumerate() {
            bucket.touched_s = secs(at_ms(i));
        }
    }

    /// The index of the bucket untouched the longest, if it was untouched for `refresh_ms`.
    /// One bucket past the deepest is included, so a node keeps finding its nearest neighbours.
    pub fn stale(&self, now_ms: u64, refresh_ms: u64) -> Option<u32> {
        let limit = secs(now_ms).saturating_sub(secs(refresh_ms));
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.touched_s <= limit)
            .min_by_key(|(_, b)| b.touched_s)
            .map(|(i, _)| i as u32)
    }

    /// The approximate bytes this table holds (for state accounting).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.buckets.capacity() * std::mem::size_of::<Bucket<C>>()
            + self
                .buckets
                .iter()
                .map(|b| b.entries.capacity() * std::mem::size_of::<Entry<C>>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct C(u64, u64);
    impl Contact for C {
        type Key = u64;
        fn key(&self) -> u64 {
            self.0
        }
        fn group(&self) -> u64 {
            self.1
        }
        fn valid(&self) -> bool {
            true
        }
        fn wire_len(&self) -> usize {
            8
        }
    }

    #[test]
    fn a_full_bucket_keeps_old_contacts_that_answer() {
        let mut t: Table<C> = Table::new(0, 2, 8);
        // Keys with the top bit set all fall in bucket 0.
        let (a, b, c) = (C(1 << 63, 1), C((1 << 63) | 1, 2), C((1 << 63) | 2, 3));
        assert_eq!(t.heard(a.clone(), 0), Heard::Added);
        assert_eq!(t.heard(b.clone(), 0), Heard::Added);
        assert_eq!(t.heard(b.clone(), 0), Heard::In);
        assert_eq!(t.heard(c.clone(), 0), Heard::Check(a.clone()));
        // A second newcomer while the check runs is not kept.
        assert_eq!(t.heard(C((1 << 63) | 3, 4), 0), Heard::Dropped);
        t.answered(&a.0, 1000);
        assert!(t.get(&a.0).is_some() && t.get(&c.0).is_none());
        // Next time the oldest (b) fails its check: the newcomer takes its place.
        assert_eq!(t.heard(c.clone(), 2000), Heard::Check(b.clone()));
        t.failed(&b.0, 3000);
        assert!(t.get(&b.0).is_none() && t.get(&c.0).is_some());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn one_address_group_gets_a_share_of_a_bucket() {
        let mut t: Table<C> = Table::new(0, 20, 2);
        for i in 0..10 {
            t.heard(C((1 << 63) | i, 7), 0);
        }
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn closest_agrees_with_sorting_everything() {
        let mut t: Table<C> = Table::new(0x5555_0000_0000_0000, 4, 4);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut all = Vec::new();
        for i in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if t.heard(C(x, i), 0) == Heard::Added {
                all.push(x);
            }
        }
        let mut targets = vec![0u64, u64::MAX, 0x5555_0000_0000_0001, 0x1234_5678_9abc_def0];
        // Targets near this node too, where the deeper buckets are visited out of order.
        for i in 0..200u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            targets.push(if i % 2 == 0 {
                x
            } else {
                t.me() ^ (x >> (i % 60))
            });
        }
        for target in targets {
            let mut sorted = all.clone();
            sorted.sort_by_key(|k| k ^ target);
            let got: Vec<u64> = t.closest(&target, 10).iter().map(|c| c.0).collect();
            assert_eq!(
                got,
                sorted[..10.min(sorted.len())].to_vec(),
                "target {target:x}"
            );
            let closer = all
                .iter()
                .filter(|k| (*k ^ target) < (t.me() ^ target))
                .count();
            assert_eq!(t.closer_than_me(&target), closer);
        }
    }

    #[test]
    fn failing_contacts_leave_after_two_failures() {
        let mut t: Table<C> = Table::new(0, 20, 20);
        t.heard(C(1, 1), 0);
        t.failed(&1, 0);
        assert_eq!(t.len(), 1);
        t.failed(&1, 0);
        assert_eq!(t.len(), 0);
        assert_eq!(t.depth(), 0);
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct N(crate::key::Id);
    impl Contact for N {
        type Key = crate::key::Id;
        fn key(&self) -> crate::key::Id {
            self.0
        }
        fn group(&self) -> u64 {
            u64::from(self.0.0[5])
        }
        fn valid(&self) -> bool {
            true
        }
        fn wire_len(&self) -> usize {
            32
        }
    }

    #[test]
    fn closest_agrees_with_sorting_everything_for_node_ids() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut id = move || {
            let mut bytes = [0u8; 32];
            for chunk in bytes.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_be_bytes());
            }
            crate::key::Id(bytes)
        };
        let me = id();
        let mut t: Table<N> = Table::new(me, 8, 8);
        let mut all = Vec::new();
        for _ in 0..2_000 {
            let mut k = id();
            // Many near this node, so the deeper buckets fill.
            let shared = (k.0[31] % 24) as usize;
            k.0[..shared].copy_from_slice(&me.0[..shared]);
            if t.heard(N(k), 0) == Heard::Added {
                all.push(k);
            }
        }
        for i in 0..200 {
            let mut target = id();
            if i % 2 == 1 {
                let shared = i % 20;
                target.0[..shared].copy_from_slice(&me.0[..shared]);
            }
            let mut sorted = all.clone();
            sorted.sort_by_key(|k| k.distance(&target));
            let got: Vec<crate::key::Id> = t.closest(&target, 20).iter().map(|c| c.0).collect();
            assert_eq!(
                got,
                sorted[..20.min(sorted.len())].to_vec(),
                "target {target:?}"
            );
        }
    }
}
