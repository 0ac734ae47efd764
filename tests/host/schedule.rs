//! The depth-first schedule on graphs built without a device: every node reads what it
//! read in program order and every tensor ends as it did, while a layer chain in row
//! bands — each band reading its neighbours, with a per-band cache read and then
//! refreshed, as the VAE's convs do — plans a fraction of the program order's memory.
use graph::ir::Graph;
use graph::plan::Plan;
use graph::schedule::depth_first;
use graph::{Builder, TensorId};
use runtime::kernels::copy;
use runtime::{Capabilities, DType, DeviceKind};
use std::collections::HashMap;

/// `layers` layers of `bands` bands of `[rows, 16]`: band j of a layer is band j of the
/// one before plus its lower neighbour plus the band's cache, then the cache ← the input band.
fn banded_chain(bands: usize, layers: usize, rows: usize) -> Builder {
    let mut g = Builder::new(Capabilities::baseline(DeviceKind::Gpu));
    let whole = |n: usize| copy::Params::new(&[n], 0, &[1], 0, &[1]);
    let mut x: Vec<TensorId> = (0..bands).map(|j| g.input(&format!("x@{j}"), &[rows, 16], DType::F32)).collect();
    for l in 0..layers {
        let caches: Vec<TensorId> = (0..bands).map(|j| g.planned_state(&format!("l{l}.cache@{j}"), &[rows, 16], DType::F32)).collect();
        let mut y = Vec::with_capacity(bands);
        for j in 0..bands {
            let below = x[(j + 1).min(bands - 1)];
            let halo = g.add(&format!("l{l}.halo@{j}"), x[j], below, 1.0).unwrap();
            let old = g.copy_new(&format!("l{l}.cache_read@{j}"), caches[j], &[rows, 16], &whole(rows * 16)).unwrap();
            y.push(g.add(&format!("l{l}@{j}"), halo, old, 1.0).unwrap());
        }
        for j in 0..bands {
            g.copy_into(&format!("l{l}.cache_write@{j}"), x[j], caches[j], &whole(rows * 16)).unwrap();
        }
        x = y;
    }
    for (j, &t) in x.iter().enumerate() {
        g.output(t, &format!("y@{j}"));
    }
    g
}

/// For each node (by its program-order index), the writer of each tensor it binds at
/// the moment it runs, and each tensor's last writer: equal for two orders of one
/// graph iff they compute the same values.
fn versions(g: &Graph, order: &[usize]) -> (Vec<Vec<Option<usize>>>, HashMap<TensorId, usize>) {
    let mut last = HashMap::new();
    let mut seen = vec![Vec::new(); g.nodes.len()];
    for &i in order {
        let n = &g.nodes[i];
        seen[i] = n.args.iter().map(|t| last.get(t).copied()).collect();
        last.extend(n.writes().map(|t| (t, i)));
    }
    (seen, last)
}

#[test]
fn depth_first_keeps_every_value_and_plans_less() {
    let mut g = banded_chain(24, 4, 8);
    let before = g.graph().clone();
    let order = depth_first(&before);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..before.nodes.len()).collect::<Vec<_>>(), "not a permutation");
    let program: Vec<usize> = (0..before.nodes.len()).collect();
    assert!(versions(&before, &order) == versions(&before, &program), "a node reads another version than in program order");

    g.schedule_depth_first();
    let after = g.graph();
    let labels = |g: &Graph, order: &[usize]| order.iter().map(|&i| g.nodes[i].label.clone()).collect::<Vec<_>>();
    assert_eq!(labels(after, &program), labels(&before, &order));
    let (was, now) = (Plan::new(&before, true), Plan::new(after, true));
    now.verify(after);
    println!(
        "24 bands × 4 layers: {} → {} bytes planned, {} → {} buffers",
        was.planned_bytes(),
        now.planned_bytes(),
        was.buffers.len(),
        now.buffers.len()
    );
    // Program order holds a layer's 24 bands and the next's; depth first, a few per layer.
    assert!(now.planned_bytes() * 3 <= was.planned_bytes(), "{} vs {}", now.planned_bytes(), was.planned_bytes());
}

#[test]
fn a_chain_without_bands_plans_no_more_than_in_program_order() {
    let mut g = banded_chain(1, 5, 4);
    let was = Plan::new(g.graph(), true).planned_bytes();
    g.schedule_depth_first();
    assert!(Plan::new(g.graph(), true).planned_bytes() <= was);
}
