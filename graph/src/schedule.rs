//! Reordering a graph's nodes so that fewer activations are live at once.
//!
//! Model code appends ops layer by layer, so a layer split into row bands holds all
//! of its bands until the next layer has read them: its plan is that of the whole
//! layer. Run depth first instead — each output after just the nodes it needs, and
//! each node that makes no activation (a cache update, an output copy) as soon as it
//! can — the bands advance as a wavefront through the layers and each layer holds
//! only the few bands its successor still reads. The order keeps every read after
//! the write it read and every write after the reads and the write before it, so
//! every tensor holds what it held in program order: the results are identical.
use crate::builder::Builder;
use crate::ir::{Graph, Kind, TensorId};

/// Each node's earlier nodes it must follow, ascending: the last writer of every
/// tensor it binds and, for a tensor it writes, the reads since that writer.
fn dependencies(g: &Graph) -> Vec<Vec<usize>> {
    let mut last_write: Vec<Option<usize>> = vec![None; g.tensors.len()];
    let mut reads: Vec<Vec<usize>> = vec![Vec::new(); g.tensors.len()];
    let mut deps = Vec::with_capacity(g.nodes.len());
    for (i, n) in g.nodes.iter().enumerate() {
        let writes: Vec<TensorId> = n.writes().collect();
        let mut d = Vec::new();
        for t in &n.args {
            d.extend(last_write[t.0]);
            if writes.contains(t) {
                d.extend_from_slice(&reads[t.0]);
            }
        }
        for t in n.args.iter().filter(|t| !writes.contains(t)) {
            reads[t.0].push(i);
        }
        for t in &writes {
            last_write[t.0] = Some(i);
            reads[t.0].clear();
        }
        d.sort_unstable();
        d.dedup();
        deps.push(d);
    }
    deps
}

/// The depth-first order of `g`'s nodes (a permutation of their indices).
pub fn depth_first(g: &Graph) -> Vec<usize> {
    let deps = dependencies(g);
    let mut dependents = vec![Vec::new(); deps.len()];
    for (i, d) in deps.iter().enumerate() {
        d.iter().for_each(|&p| dependents[p].push(i));
    }
    let makes_activation = |i: usize| g.nodes[i].writes().any(|t| g.desc(t).kind == Kind::Activation);
    let mut done = vec![false; deps.len()];
    let mut order = Vec::with_capacity(deps.len());
    // Whether `e`'s dependency `d` is no reason to wait: it has run, or can run now for
    // `e` alone (as the temporary a cache shift reads its old slot into can).
    let ready = |done: &[bool], d: usize, e: usize| done[d] || (dependents[d] == [e] && deps[d].iter().all(|&x| done[x]));
    // Outputs first, in program order; what is left (state updates nothing later
    // reads, which pulled in program order would bring whole layers forward) after.
    let outputs = (0..deps.len()).filter(|&i| g.nodes[i].writes().any(|t| g.desc(t).kind == Kind::Output));
    for root in outputs.chain(0..deps.len()) {
        // (node, how many of its dependencies were visited); an explicit stack, as
        // the chains of a many-band graph are thousands of nodes deep.
        let mut stack = vec![(root, 0)];
        while let Some((n, k)) = stack.pop() {
            if done[n] {
                continue;
            }
            if let Some(&d) = deps[n].get(k) {
                stack.push((n, k + 1));
                stack.push((d, 0));
                continue;
            }
            done[n] = true;
            order.push(n);
            for &e in dependents[n].iter().rev() {
                if !done[e] && !makes_activation(e) && deps[e].iter().all(|&d| ready(&done, d, e)) {
                    stack.push((e, 0));
                }
            }
        }
    }
    order
}

impl Builder {
    /// Reorders the nodes built so far depth first ([`depth_first`]); no node may be
    /// referred to by index across this call.
    pub fn schedule_depth_first(&mut self) {
        let order = depth_first(&self.graph);
        let mut nodes: Vec<_> = std::mem::take(&mut self.graph.nodes).into_iter().map(Some).collect();
        self.graph.nodes = order.into_iter().map(|i| nodes[i].take().expect("each node once")).collect();
    }
}
