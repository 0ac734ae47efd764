//! Activation memory planning from lifetimes.
//!
//! WebGPU forbids binding one buffer both writable and read-only in a dispatch, so
//! activations cannot share one arena at different offsets. Reuse is therefore at
//! the buffer level: tensors whose lifetimes (first write .. last use, inclusive)
//! do not overlap share a buffer sized to the largest of them. Tensors are placed
//! largest first into the first compatible buffer (greedy by size, as in
//! arXiv 2001.03288), which keeps big tensors from fragmenting the pool.
use crate::ir::{Graph, Kind, TensorId};

#[derive(Clone, Debug)]
pub struct Plan {
    /// Byte size of each pooled buffer.
    pub buffers: Vec<u64>,
    /// For each tensor of the graph, the pooled buffer it lives in (activations only).
    pub slot: Vec<Option<usize>>,
    /// Lifetime of each activation as node indices (first, last), inclusive.
    pub life: Vec<Option<(usize, usize)>>,
}

fn lifetimes(g: &Graph) -> Vec<Option<(usize, usize)>> {
    let mut life: Vec<Option<(usize, usize)>> = vec![None; g.tensors.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        for &TensorId(t) in &n.args {
            if g.tensors[t].kind == Kind::Activation {
                life[t] = Some(life[t].map_or((i, i), |(a, _)| (a, i)));
            }
        }
    }
    life
}

impl Plan {
    /// Plans every activation; `reuse = false` gives each its own buffer (for bisecting).
    pub fn new(g: &Graph, reuse: bool) -> Plan {
        let life = lifetimes(g);
        let mut order: Vec<usize> = (0..g.tensors.len()).filter(|&t| life[t].is_some()).collect();
        order.sort_by_key(|&t| (std::cmp::Reverse(g.tensors[t].bytes()), t));
        let mut buffers: Vec<u64> = Vec::new();
        let mut tenants: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut slot = vec![None; g.tensors.len()];
        for t in order {
            let (a, b) = life[t].expect("filtered to planned tensors");
            let free = |ten: &Vec<(usize, usize)>| ten.iter().all(|&(x, y)| b < x || y < a);
            let found = if reuse { tenants.iter().position(free) } else { None };
            let s = found.unwrap_or_else(|| {
                buffers.push(0);
                tenants.push(Vec::new());
                buffers.len() - 1
            });
            buffers[s] = buffers[s].max(g.tensors[t].bytes());
            tenants[s].push((a, b));
            slot[t] = Some(s);
        }
        Plan { buffers, slot, life }
    }

    pub fn planned_bytes(&self) -> u64 {
        self.buffers.iter().sum()
    }

    /// Panics if two tensors sharing a buffer are ever live at once: the invariant
    /// the executor's correctness rests on, checked by the tests on real graphs.
    pub fn verify(&self, g: &Graph) {
        for t in 0..g.tensors.len() {
            for u in t + 1..g.tensors.len() {
                if let (Some(s), Some(r)) = (self.slot[t], self.slot[u]) {
                    let ((a, b), (x, y)) = (self.life[t].unwrap(), self.life[u].unwrap());
                    assert!(s != r || b < x || y < a, "{} and {} share buffer {s} while both live", g.tensors[t].name, g.tensors[u].name);
                }
            }
        }
    }
}
