//! The activation planner on graphs built without a device: buffers are shared only by
//! tensors whose lifetimes do not overlap, reuse never costs more than no reuse, and
//! the greedy placement of a simple chain is what the lifetimes allow.
use graph::plan::Plan;
use graph::{Builder, Kind};
use runtime::{Capabilities, DType, DeviceKind};

fn builder() -> Builder {
    Builder::new(Capabilities::baseline(DeviceKind::Gpu))
}

/// x → a → b → … (each op reads only its predecessor): two buffers suffice, of the largest size.
#[test]
fn a_chain_ping_pongs_between_two_buffers() {
    let mut g = builder();
    let mut t = g.input("x", &[64, 32], DType::F32);
    for i in 0..6 {
        t = if i % 2 == 0 { g.silu(&format!("s{i}"), t) } else { g.gelu(&format!("g{i}"), t) }.unwrap();
    }
    g.output(t, "y");
    let plan = Plan::new(g.graph(), true);
    plan.verify(g.graph());
    assert_eq!(plan.buffers, [64 * 32 * 4; 2]);
    let lone = Plan::new(g.graph(), false);
    assert_eq!(lone.buffers.len(), plan.slot.iter().flatten().count());
}

/// Branches that stay live across other ops keep their buffers; the plan never has two
/// live tensors in one buffer, and reuse saves bytes without adding any.
#[test]
fn long_lived_branches_keep_their_buffers() {
    let mut g = builder();
    let x = g.input("x", &[128, 16], DType::F32);
    let keep = g.silu("keep", x).unwrap();
    let mut t = keep;
    for i in 0..5 {
        t = g.gelu(&format!("g{i}"), t).unwrap();
    }
    let y = g.add("y", t, keep, 1.0).unwrap();
    g.output(y, "y");
    let graph = g.graph();
    let plan = Plan::new(graph, true);
    plan.verify(graph);
    let lone = Plan::new(graph, false);
    assert!(plan.planned_bytes() < lone.planned_bytes(), "{:?} vs {:?}", plan.buffers, lone.buffers);
    // `keep` is live from its op to the last: no other activation shares its buffer.
    let keep = graph.tensors.iter().position(|t| t.name == "keep").unwrap();
    let s = plan.slot[keep].unwrap();
    let sharing = graph.tensors.iter().enumerate().filter(|(i, t)| t.kind == Kind::Activation && plan.slot[*i] == Some(s)).count();
    assert_eq!(sharing, 1, "{:?}", plan.slot);
}
