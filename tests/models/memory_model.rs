//! The hybrid memory at the model level (MEMORY.md B.5): a closed router reproduces
//! the window-only model exactly, and switching the memory off changes a memory
//! model's output only once tokens have been evicted.
use videossm::replay::{replay, replay_generator, ReplayOptions};
use videossm_suite::{err_over_std, gpu, load_host, parity_dir, Rng};
use weights::{Checkpoint, DType, HostTensor};

fn host(shape: Vec<usize>, v: Vec<f32>) -> HostTensor {
    HostTensor { shape, dtype: DType::F32, data: v.iter().flat_map(|x| x.to_le_bytes()).collect() }
}

#[test]
fn closed_router_reproduces_the_window_bundle() {
    let dir = parity_dir("dit-window");
    let mut ck = Checkpoint::open(dir.join("model.safetensors")).unwrap();
    let (dim, heads, layers) = (64, 4, 2);
    let mut rng = Rng::new(23);
    for n in 0..layers {
        let m = format!("blocks.{n}.self_attn.memory");
        for part in ["beta", "alpha", "gate"] {
            ck.tensors.insert(format!("{m}.{part}.weight"), host(vec![heads, dim], rng.normals(heads * dim, 0.1)));
            let bias = if part == "gate" { vec![-1e9; heads] } else { rng.normals(heads, 1.0) };
            ck.tensors.insert(format!("{m}.{part}.bias"), host(vec![heads], bias));
        }
        ck.tensors.insert(format!("{m}.A_log"), host(vec![heads], rng.normals(heads, 0.5)));
    }
    let got = replay_generator(gpu().clone(), &dir, &ck, ReplayOptions::default()).unwrap();
    for (key, (_, want)) in load_host(&dir.join("expected.safetensors")) {
        let e = err_over_std(&got[&key].1, &want);
        assert!(e <= 1e-3, "{key}: {e:.3e} × std with the router closed");
    }
}

#[test]
fn memory_off_changes_only_chunks_after_the_first_eviction() {
    // dit-memory: 9-frame window, 3 sinks, 3-frame chunks → chunk 3 is the first to evict.
    let dir = parity_dir("dit-memory");
    let expected = load_host(&dir.join("expected.safetensors"));
    let off = replay(gpu().clone(), &dir, ReplayOptions { memory: false, ..Default::default() }).unwrap();
    for c in 0..8 {
        let key = format!("flow.{c}.0");
        let e = err_over_std(&off[&key].1, &expected[&key].1);
        if c < 3 {
            assert!(e <= 1e-3, "{key}: {e:.3e} × std, but no token has left the window yet");
        } else {
            assert!(e > 1e-2, "{key}: only {e:.3e} × std away without the memory, which should matter after evictions");
        }
    }
}
