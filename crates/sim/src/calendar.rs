//! The event queue: a calendar of one bucket per simulated millisecond over the next minute,
//! and a heap for what lies further out. A binary heap of every pending event was the
//! simulator's largest cost at a million nodes (each pop walks ~20 levels of a heap that does
//! not fit the cache); here pushing and popping an event of the next minute is a `Vec` push and
//! a read in order, and ties keep the order they were pushed in, as the heap's sequence
//! numbers did, so a seed still fixes the run.

use std::collections::{BinaryHeap, VecDeque};

/// Milliseconds the buckets cover ahead of the clock (a power of two).
const SPAN: u64 = 1 << 16;

/// Pending events ordered by time, ties in push order.
pub(crate) struct Calendar<E> {
    /// The time of the bucket being read.
    now: u64,
    /// The events of `now` taken out of their bucket, in order.
    current: VecDeque<E>,
    /// `SPAN` buckets; bucket `t % SPAN` holds the events at `t` for `now <= t < now + SPAN`.
    buckets: Vec<Vec<E>>,
    /// Events in `buckets`.
    in_buckets: usize,
    /// Events at `now + SPAN` or later, with the sequence that orders their ties.
    far: BinaryHeap<Far<E>>,
    seq: u64,
}

struct Far<E> {
    at: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Far<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Far<E> {}
impl<E> PartialOrd for Far<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Far<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap pops the greatest: the earliest must compare greatest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<E> Calendar<E> {
    /// An empty calendar whose clock reads `now`.
    pub(crate) fn new(now: u64) -> Self {
        Self {
            now,
            current: VecDeque::new(),
            buckets: (0..SPAN).map(|_| Vec::new()).collect(),
            in_buckets: 0,
            far: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Adds an event at `at`; an event in the past is taken as now.
    pub(crate) fn push(&mut self, at: u64, event: E) {
        let at = at.max(self.now);
        if at == self.now && !self.current.is_empty() {
            self.current.push_back(event);
        } else if at < self.now + SPAN {
            self.buckets[(at % SPAN) as usize].push(event);
            self.in_buckets += 1;
        } else {
            self.seq += 1;
            self.far.push(Far {
                at,
                seq: self.seq,
                event,
            });
        }
    }

    /// The earliest event and its time.
    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        loop {
            if let Some(event) = self.current.pop_front() {
                return Some((self.now, event));
            }
            let bucket = &mut self.buckets[(self.now % SPAN) as usize];
            if !bucket.is_empty() {
                self.in_buckets -= bucket.len();
                // Taken, not drained: a bucket keeps no capacity for the minute after.
                self.current = std::mem::take(bucket).into();
                continue;
            }
            if self.in_buckets == 0 {
                // Nothing within the span: jump to the first far event.
                let at = self.far.peek()?.at;
                self.now = at.max(self.now + 1);
            } else {
                self.now += 1;
            }
            // Far events coming within the span move to their bucket before anything can be
            // pushed there directly, so they stay ahead of later pushes at the same time.
            while let Some(first) = self.far.peek()
                && first.at < self.now + SPAN
            {
                let Some(Far { at, event, .. }) = self.far.pop() else {
                    break;
                };
                self.buckets[(at % SPAN) as usize].push(event);
                self.in_buckets += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_time_order_ties_in_push_order() {
        let mut calendar = Calendar::new(10);
        let mut expected = Vec::new();
        let mut state = 7u64;
        for i in 0..5_000u64 {
            state = crate::model::mix(state);
            // Near and far times, many ties.
            let at = 10 + state % (3 * SPAN);
            calendar.push(at, i);
            expected.push((at, i));
        }
        expected.sort();
        let got: Vec<(u64, u64)> = std::iter::from_fn(|| calendar.pop()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn pushes_while_reading_keep_order() {
        let mut calendar = Calendar::new(0);
        calendar.push(5, "a");
        calendar.push(5, "b");
        assert_eq!(calendar.pop(), Some((5, "a")));
        calendar.push(5, "c");
        calendar.push(3, "late"); // in the past: taken as now
        calendar.push(6, "d");
        calendar.push(5 + SPAN, "far");
        assert_eq!(calendar.pop(), Some((5, "b")));
        assert_eq!(calendar.pop(), Some((5, "c")));
        assert_eq!(calendar.pop(), Some((5, "late")));
        assert_eq!(calendar.pop(), Some((6, "d")));
        assert_eq!(calendar.pop(), Some((5 + SPAN, "far")));
        assert_eq!(calendar.pop(), None);
    }
}
