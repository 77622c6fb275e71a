//! Small networks of real nodes for the end-to-end tests.

use crate::{TestNode, eventually};
use std::collections::BTreeSet;

/// Starts `n` nodes: the first alone, each next one joining through the first and the one
/// before it (several known peers, as real users would pass).
pub fn start(n: usize) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = vec![TestNode::new("")];
    for i in 1..n {
        let mut tickets = vec![nodes[0].ticket()];
        if i > 1 {
            tickets.push(nodes[i - 1].ticket());
        }
        nodes.push(TestNode::joining("", &tickets));
    }
    nodes
}

/// The ids of the nodes in `node`'s view (itself included): the peers it checks and the
/// contacts of its DHT routing table.
pub fn known_nodes(node: &TestNode) -> BTreeSet<String> {
    node.get_json("/api/network/nodes")
        .as_array()
        .expect("a list")
        .iter()
        .map(|n| n["node"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until every node has joined: each knows every other (in a network this small, every
/// lookup meets every node, so each DHT table holds them all).
pub fn wait_until_all_know_each_other(nodes: &[TestNode]) {
    let all: BTreeSet<String> = nodes.iter().map(|n| n.id()).collect();
    for node in nodes {
        eventually("every node to know every other", || {
            (known_nodes(node) == all).then_some(())
        });
    }
}

/// The nodes `node` routes `service` to, best first, as it looks them up now; a provider it
/// could not reach lately is not among them (the DHT may still name it: a node that died
/// does not withdraw).
pub fn routes(node: &TestNode, service: &str) -> Vec<String> {
    let v = node.get_json(&format!("/api/network/routes?service={service}"));
    v[0]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["healthy"] == true)
        .map(|r| r["node"].as_str().unwrap_or_default().to_string())
        .collect()
}
