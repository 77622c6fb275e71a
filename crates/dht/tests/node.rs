//! The DHT node's state machine driven by hand: messages delivered at once, in order, between
//! a few dozen nodes. What a lookup, a provide, a refusal and a failure do, request by request.
#![allow(clippy::unwrap_used, reason = "test helpers")]

use micro_dht::{Contact, Dht, Output, Params, Refusal, Request, Response, Value};
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer(u64);
impl Contact for Peer {
    type Key = u64;
    fn key(&self) -> u64 {
        self.0
    }
    fn group(&self) -> u64 {
        self.0
    }
    fn valid(&self) -> bool {
        // Keys with the low bit set stand for keys without the work.
        self.0 & 1 == 0
    }
    fn wire_len(&self) -> usize {
        8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    provider: u64,
    expires: u64,
    signed: bool,
}
impl Value for Entry {
    type Key = u64;
    fn provider(&self) -> u64 {
        self.provider
    }
    fn expires_ms(&self) -> u64 {
        self.expires
    }
    fn newer_than(&self, other: &Self) -> bool {
        self.expires > other.expires
    }
    fn valid_for(&self, _: &u64, now: u64) -> bool {
        self.signed && self.expires > now
    }
    fn wire_len(&self) -> usize {
        16
    }
}

struct Net {
    nodes: HashMap<u64, Dht<Peer, Entry>>,
    down: Vec<u64>,
    done: Vec<(u64, micro_dht::Outcome<Peer, Entry>)>,
    republish: Vec<(u64, u64)>,
    now: u64,
}

/// A small network's parameters: buckets and stores a few dozen nodes fill.
fn params() -> Params {
    Params {
        k: 8,
        replication: 4,
        ..Params::default()
    }
}

impl Net {
    fn new(keys: &[u64]) -> Self {
        let nodes = keys
            .iter()
            .map(|k| (*k, Dht::new(*k, params(), *k, 0)))
            .collect();
        Self {
            nodes,
            down: Vec::new(),
            done: Vec::new(),
            republish: Vec::new(),
            now: 0,
        }
    }

    /// Delivers every message until none is left.
    fn settle(&mut self) {
        let mut queue: VecDeque<u64> = self.nodes.keys().copied().collect();
        while let Some(n) = queue.pop_front() {
            while let Some(out) = self.nodes.get_mut(&n).and_then(Dht::poll) {
                match out {
                    Output::Send { to, id, request } => {
                        let now = self.now;
                        if self.down.contains(&to.0) || !self.nodes.contains_key(&to.0) {
                            self.nodes.get_mut(&n).unwrap().fail(id, now);
                            continue;
                        }
                        let response =
                            self.nodes
                                .get_mut(&to.0)
                                .unwrap()
                                .handle(Peer(n), request, now);
                        queue.push_back(to.0);
                        self.nodes.get_mut(&n).unwrap().answer(id, response, now);
                    }
                    Output::Done { outcome, .. } => self.done.push((n, outcome)),
                    Output::Republish { key } => self.republish.push((n, key)),
                }
            }
        }
    }
}

fn keys(n: u64) -> Vec<u64> {
    (1..=n)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) & !1)
        .collect()
}

fn joined(n: u64) -> Net {
    let keys = keys(n);
    let mut net = Net::new(&keys);
    for k in &keys[1..] {
        net.nodes
            .get_mut(k)
            .unwrap()
            .join(vec![Peer(keys[0])], 0)
            .unwrap();
        net.settle();
    }
    net.done.clear();
    net
}

/// `provider` provides `service` until `expires`; returns the entry once the provide is done.
fn provide(net: &mut Net, provider: u64, service: u64, expires: u64) -> Entry {
    let entry = Entry {
        provider,
        expires,
        signed: true,
    };
    net.nodes
        .get_mut(&provider)
        .unwrap()
        .provide(service, entry, 0)
        .unwrap();
    net.settle();
    entry
}

#[test]
fn what_one_node_provides_every_other_finds() {
    let mut net = joined(48);
    let keys = keys(48);
    let service = 0x1234_5678_9abc_def0u64;
    let entry = provide(&mut net, keys[5], service, 60_000);
    let (_, provided) = net.done.pop().unwrap();
    assert_eq!(provided.stored, 4, "stored on the replication closest");
    for k in &keys {
        net.nodes
            .get_mut(k)
            .unwrap()
            .find_providers(service, 0)
            .unwrap();
    }
    net.settle();
    assert_eq!(net.done.len(), keys.len());
    for (node, outcome) in &net.done {
        assert_eq!(outcome.providers, vec![entry], "node {node:x}");
        assert!(outcome.hops <= 4, "{} hops", outcome.hops);
    }
}

#[test]
fn the_closest_nodes_keep_an_entry_and_far_ones_refuse_it() {
    let mut net = joined(48);
    let keys = keys(48);
    let service = 0x0fed_cba9_8765_4321u64;
    let entry = Entry {
        provider: keys[0],
        expires: 60_000,
        signed: true,
    };
    let mut by_distance = keys.clone();
    by_distance.sort_by_key(|k| k ^ service);
    let far = *by_distance.last().unwrap();
    let response = net.nodes.get_mut(&far).unwrap().handle(
        Peer(keys[0]),
        Request::AddProvider {
            key: service,
            value: entry,
        },
        0,
    );
    assert!(
        matches!(response, Response::Refused(Refusal::Far)),
        "{response:?}"
    );
    let near = by_distance[0];
    let forged = Entry {
        signed: false,
        ..entry
    };
    let response = net.nodes.get_mut(&near).unwrap().handle(
        Peer(keys[0]),
        Request::AddProvider {
            key: service,
            value: forged,
        },
        0,
    );
    assert!(matches!(response, Response::Refused(Refusal::Invalid)));
    let response = net.nodes.get_mut(&near).unwrap().handle(
        Peer(keys[0]),
        Request::AddProvider {
            key: service,
            value: entry,
        },
        0,
    );
    assert!(matches!(response, Response::Stored));
    // An expired entry is not handed out.
    let response = net.nodes.get_mut(&near).unwrap().handle(
        Peer(keys[1]),
        Request::GetProviders { key: service },
        70_000,
    );
    assert!(matches!(response, Response::Providers { providers, .. } if providers.is_empty()));
}

#[test]
fn contacts_without_the_work_are_never_kept_or_asked() {
    let mut net = joined(16);
    let keys = keys(16);
    let forged = 0xdead_beef_0000_0001u64;
    let response = net.nodes.get_mut(&keys[3]).unwrap().handle(
        Peer(forged),
        Request::FindNode { target: forged },
        0,
    );
    assert!(matches!(response, Response::Nodes(_)));
    for dht in net.nodes.values() {
        assert!(dht.table().contacts().all(|c| c.0 != forged));
    }
}

#[test]
fn lookups_route_around_dead_nodes_and_forget_them() {
    let mut net = joined(48);
    let keys = keys(48);
    let service = 0x5555_aaaa_5555_aaaau64;
    let entry = provide(&mut net, keys[2], service, 600_000);
    // A third of the nodes die without a word.
    net.down = keys.iter().skip(10).step_by(3).copied().collect();
    net.done.clear();
    for k in keys.iter().take(10) {
        net.nodes
            .get_mut(k)
            .unwrap()
            .find_providers(service, 0)
            .unwrap();
    }
    net.settle();
    assert_eq!(net.done.len(), 10);
    for (_, outcome) in &net.done {
        assert_eq!(outcome.providers, vec![entry]);
    }
    let dead_known: usize = keys
        .iter()
        .take(10)
        .map(|k| {
            net.nodes[k]
                .table()
                .contacts()
                .filter(|c| net.down.contains(&c.0))
                .count()
        })
        .sum();
    let failures: u32 = net.done.iter().map(|(_, o)| o.failures).sum();
    assert!(failures > 0, "some requests went to dead nodes");
    // A dead contact asked twice leaves the table; none is asked forever.
    assert!(dead_known < 10 * 8 * 3, "{dead_known} dead contacts kept");
}

#[test]
fn provided_entries_come_back_for_republishing_until_withdrawn() {
    let mut net = joined(8);
    let keys = keys(8);
    let entry = Entry {
        provider: keys[1],
        expires: 60_000,
        signed: true,
    };
    let node = net.nodes.get_mut(&keys[1]).unwrap();
    node.provide(42, entry, 0).unwrap();
    let republish = node.params().republish_ms;
    assert!(node.next_wake() <= republish);
    node.tick(republish);
    net.settle();
    assert!(net.republish.contains(&(keys[1], 42)));
    net.republish.clear();
    let node = net.nodes.get_mut(&keys[1]).unwrap();
    node.withdraw(&42);
    node.tick(3 * republish);
    net.settle();
    assert!(net.republish.is_empty());
}

/// Stores `provider`'s entry under `key` at node `holder` directly, as if its store reached
/// that node only.
fn store_at(net: &mut Net, holder: u64, key: u64, provider: u64, expires: u64) {
    let entry = Entry {
        provider,
        expires,
        signed: true,
    };
    let response = net.nodes.get_mut(&holder).unwrap().handle(
        Peer(provider),
        Request::AddProvider { key, value: entry },
        0,
    );
    assert!(matches!(response, Response::Stored), "{response:?}");
}

#[test]
fn a_lookup_for_every_provider_gathers_the_entries_each_closest_node_holds() {
    let mut net = joined(48);
    let keys = keys(48);
    let topic = 0x5555_aaaa_5555_aaa0u64;
    let mut by_distance = keys.clone();
    by_distance.sort_by_key(|k| k ^ topic);
    // Eight subscribers, each of whose entries reached one of the eight closest nodes only
    // (stores that failed elsewhere): no one node holds them all.
    let subscribers: Vec<u64> = by_distance[8..16].to_vec();
    for (holder, subscriber) in by_distance[..8].iter().zip(&subscribers) {
        store_at(&mut net, *holder, topic, *subscriber, 60_000);
    }
    let asker = *by_distance.last().unwrap();
    net.nodes
        .get_mut(&asker)
        .unwrap()
        .find_all_providers(topic, 0)
        .unwrap();
    net.settle();
    let (_, outcome) = net.done.pop().unwrap();
    let mut found: Vec<u64> = outcome.providers.iter().map(|e| e.provider).collect();
    found.sort_unstable();
    let mut want = subscribers.clone();
    want.sort_unstable();
    assert_eq!(found, want, "every subscriber, from whichever node held it");
}

#[test]
fn an_answer_carries_every_entry_a_node_keeps_under_the_key() {
    // A topic's subscribers all stored at the same closest nodes: an answer cut to the newest
    // few hid the oldest subscribers from every publisher, whichever node it asked.
    let mut net = joined(48);
    let keys = keys(48);
    let topic = 0x0f0f_f0f0_0f0f_f0f0u64;
    let mut by_distance = keys.clone();
    by_distance.sort_by_key(|k| k ^ topic);
    let holder = by_distance[0];
    let per_key = Params::default().providers_per_key;
    let subscribers: Vec<u64> = by_distance[1..=per_key].to_vec();
    for (i, subscriber) in subscribers.iter().enumerate() {
        // The first stored lives shortest.
        store_at(&mut net, holder, topic, *subscriber, 60_000 + i as u64);
    }
    let asker = *by_distance.last().unwrap();
    let node = net.nodes.get_mut(&holder).unwrap();
    let Response::Providers { providers, .. } =
        node.handle(Peer(asker), Request::GetProviders { key: topic }, 0)
    else {
        panic!("not a providers answer");
    };
    let mut found: Vec<u64> = providers.iter().map(|e| e.provider).collect();
    found.sort_unstable();
    let mut want = subscribers;
    want.sort_unstable();
    assert_eq!(found, want);
}

#[test]
fn a_newcomer_closest_to_a_key_is_handed_its_entries_before_any_republish() {
    let mut net = joined(48);
    let service = 0x3c3c_c3c3_3c3c_c3c0u64;
    let entry = provide(&mut net, keys(48)[5], service, 60_000);
    // A node whose key is next to the service's joins: lookups of the service now end at it.
    let newcomer = service ^ 2;
    net.nodes
        .insert(newcomer, Dht::new(newcomer, params(), newcomer, 0));
    net.nodes
        .get_mut(&newcomer)
        .unwrap()
        .join(vec![Peer(keys(48)[0])], 0)
        .unwrap();
    net.settle();
    assert!(net.republish.is_empty(), "no republish came into it");
    let asker = keys(48)[47];
    let Response::Providers { providers, .. } = net.nodes.get_mut(&newcomer).unwrap().handle(
        Peer(asker),
        Request::GetProviders { key: service },
        0,
    ) else {
        panic!("not a providers answer");
    };
    assert_eq!(providers, vec![entry], "the newcomer keeps the entry");
    // One holder handed it over, not every one of them.
    let held: usize = net
        .nodes
        .values()
        .map(|n| n.store().keys_held().filter(|k| **k == service).count())
        .sum();
    assert!(held <= 5, "{held} nodes keep it");
}
