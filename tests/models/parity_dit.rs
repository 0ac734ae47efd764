//! The generator at parity with the official code: every tensor of each dit-*
//! bundle's expected.safetensors within 1e-3 × its std (FORMAT.md), f32 path.
use graph::models::dit::graph::pass_graph;
use graph::models::dit::weights::{Attn, Block, DitWeights, Head, Linear, Memory, MemoryForm, Norm};
use graph::models::dit::{BlockState, DitDims, MemoryState};
use graph::{Builder, CompileOptions, GraphError, Kind};
use runtime::{DType, Gpu, GpuOptions, RuntimeError, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use videossm::replay::{replay, ReplayOptions};
use videossm_suite::{err_over_std, gpu, load_host, parity_dir};

fn check(name: &str, opts: ReplayOptions, tol: f64) {
    check_dir(gpu().clone(), name, &parity_dir(name), opts, tol);
}

fn check_dir(gpu: Arc<Gpu>, name: &str, dir: &Path, opts: ReplayOptions, tol: f64) {
    let expected = load_host(&dir.join("expected.safetensors"));
    let got = replay(gpu, dir, opts).unwrap();
    let mut worst = ("", 0.0f64);
    for (key, (shape, want)) in &expected {
        let (gshape, g) = got.get(key).unwrap_or_else(|| panic!("{name}: replay did not produce {key}"));
        assert_eq!(gshape, shape, "{name}: {key} shape");
        let e = err_over_std(g, want);
        if e > worst.1 {
            worst = (key, e);
        }
        assert!(e <= tol, "{name}: {key} max|err| = {e:.3e} × std (allowed {tol:e})");
    }
    println!("{name}: {} tensors, worst {} at {:.3e} × std", expected.len(), worst.0, worst.1);
}

#[test]
fn dit_small_full_cache() {
    check("dit-small", ReplayOptions::default(), 1e-3);
}

#[test]
fn dit_window_evicting_with_sinks() {
    check("dit-window", ReplayOptions::default(), 1e-3);
}

#[test]
fn dit_memory_hybrid() {
    check("dit-memory", ReplayOptions::default(), 1e-3);
}

#[test]
fn dit_memory_gated_delta() {
    // MEMORY.md B.6: gated delta rule, normed and gated read after `o`, router.
    check("dit-memory-gd", ReplayOptions::default(), 1e-3);
}

#[test]
fn dit_memory_gated_delta_with_half_weights() {
    // As dit_memory_with_f16_weights; B.6 adds the [D, D] out_gate in half precision.
    // Every tensor, flow.* included, within the 2e-2 × std for f16 and bf16.
    for wdtype in [runtime::DType::F16, runtime::DType::BF16] {
        check("dit-memory-gd", ReplayOptions { wdtype, memory: true, ..Default::default() }, 2e-2);
    }
}

#[test]
fn dit_memory_gated_delta_equals_no_memory_before_the_first_eviction() {
    // 9-frame window, 3 sinks, 3-frame chunks: chunk 3 is the first to evict. Before,
    // S = 0 and the read adds m·γ·Swish(0) = 0 exactly, so the bits must agree.
    let dir = parity_dir("dit-memory-gd");
    let on = replay(gpu().clone(), &dir, ReplayOptions::default()).unwrap();
    let off = replay(gpu().clone(), &dir, ReplayOptions { memory: false, ..Default::default() }).unwrap();
    for c in 0..8 {
        for s in 0..4 {
            let key = format!("flow.{c}.{s}");
            if c < 3 {
                assert_eq!(on[&key].1, off[&key].1, "{key}: no token has left the window yet");
            } else if s == 0 {
                let e = err_over_std(&off[&key].1, &on[&key].1);
                assert!(e > 1e-2, "{key}: only {e:.3e} × std away without the memory, which should matter after evictions");
            }
        }
    }
}

#[test]
fn dit_memory_with_f16_weights() {
    // f16 weights (f32 activations and accumulation): 2e-2 × std, as issue 4 asks.
    check("dit-memory", ReplayOptions { wdtype: runtime::DType::F16, memory: true, ..Default::default() }, 2e-2);
}

#[test]
fn dit_window_with_bf16_weights() {
    // bf16 keeps 8 mantissa bits (f16 has 11): the same budget holds at these widths.
    check("dit-window", ReplayOptions { wdtype: runtime::DType::BF16, memory: true, ..Default::default() }, 2e-2);
}

/// The embedded model's generator (memory on, window 9, no sinks; tokens evicted from
/// chunk 3 on), replayed from the bundle `weights/train/check_parity.py` writes.
fn tiny_bundle() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/train/bundle-tiny/dit");
    assert!(dir.is_dir(), "{} is missing: write it with weights/train/check_parity.py --bundle-out", dir.display());
    dir
}

#[test]
fn dit_trained_tiny_model() {
    check_dir(gpu().clone(), "bundle-tiny/dit", &tiny_bundle(), ReplayOptions::default(), 1e-3);
}

#[test]
fn weights_wider_than_a_binding_run_as_column_blocks() {
    // The tiny model on a device that allows 256 KiB per binding: its `time_projection`
    // ([128, 768] f32, 384 KiB) is then stored and run as two column blocks, as
    // umT5-XXL's FFN is in f32 (or Wan-14B's in bf16) on a 128 MiB adapter.
    let cap = 256 << 10;
    assert_eq!(runtime::kernels::matmul::column_blocks(768, 128, 1, runtime::DType::F32, cap).unwrap().len(), 2);
    let small = Gpu::new(&GpuOptions { max_binding: Some(cap), ..GpuOptions::from_env() }).unwrap();
    assert_eq!(small.max_binding(), cap);
    check_dir(Arc::new(small), "bundle-tiny/dit with 256 KiB bindings", &tiny_bundle(), ReplayOptions::default(), 1e-3);
}

#[test]
fn ffn_hidden_in_row_blocks_matches_the_bundles() {
    // No bundle can be capped so that its FFN hidden outgrows a binding while its KV
    // window still fits one (window 9 frames ≥ a 3-frame chunk's hidden, ffn = 3·dim),
    // so the split size is lowered instead of the binding: the same code path the
    // full-size model takes on a 128 MiB adapter. The tiny model's hidden [48, 384]
    // f32 (72 KiB) at 40 KiB blocks: rows 0..24 and 24..48, the second starting inside
    // frame 1, so the gated residual's frame index is exercised mid-frame too.
    let split = 40 << 10;
    let blocks = graph::models::linear::row_blocks("ffn.0", 48, 384, split).unwrap();
    assert_eq!(blocks, [(0, 24), (24, 24)]);
    let opts = ReplayOptions { split_bytes: Some(split), ..Default::default() };
    check_dir(gpu().clone(), "bundle-tiny/dit in FFN row blocks", &tiny_bundle(), opts, 1e-3);
    // dit-memory (sinks, eviction, SSM memory): hidden [48, 128] in 3 blocks of 16 rows.
    let split = 8 << 10;
    assert_eq!(graph::models::linear::row_blocks("ffn.0", 48, 128, split).unwrap().len(), 3);
    check("dit-memory", ReplayOptions { split_bytes: Some(split), ..Default::default() }, 1e-3);
}

#[test]
fn ffn_rows_wider_than_the_split_size_are_a_limit_error() {
    let opts = ReplayOptions { split_bytes: Some(1024), ..Default::default() };
    let e = replay(gpu().clone(), &tiny_bundle(), opts).err().expect("one 1536-byte hidden row cannot fit 1024 bytes");
    let msg = format!("{e:#}");
    println!("{msg}");
    assert!(msg.contains("one row of blocks.0.ffn.0 [48, 384] f32") && msg.contains("1536") && msg.contains("1024"), "{msg}");
}

/// Stand-ins for device tensors: right shapes and dtypes, all on one 4-byte buffer,
/// for a graph that is planned and never compiled; weights in column blocks for bindings of `.1` bytes.
struct Planned(Tensor, u64);

impl Planned {
    fn t(&self, shape: &[usize], dtype: DType) -> Tensor {
        Tensor { shape: shape.to_vec(), dtype, ..self.0.clone() }
    }

    fn f32(&self, shape: &[usize]) -> Tensor {
        self.t(shape, DType::F32)
    }

    /// A bf16 `nn.Linear(inp, out)` with bias, as [`Linear::upload`] stores it.
    fn linear(&self, inp: usize, out: usize) -> Linear {
        let blocks = runtime::kernels::matmul::column_blocks(out, inp, 1, DType::BF16, self.1).unwrap();
        Linear { weight: blocks.iter().map(|c| self.t(&[inp, c.len()], DType::BF16)).collect(), bias: Some(self.f32(&[out])) }
    }

    /// Wan2.1-T2V-1.3B with VideoSSM's gated delta memory, a 3-frame chunk at 480×832
    /// (60×104 latents, 4680 tokens), a 9-frame window.
    fn wan_1_3b(&self) -> (DitWeights, Vec<BlockState>, DitDims) {
        let (d, ffn, heads, layers) = (1536, 8960, 12, 30);
        let dims = DitDims {
            dim: d,
            heads,
            frames: 3,
            channels: 16,
            out_channels: 16,
            height: 60,
            width: 104,
            rows: 30,
            cols: 52,
            freq_dim: 256,
            text_len: 512,
            text_dim: 4096,
            eps: 1e-6,
            memory_horizon: 21,
        };
        let attn = || (self.linear(d, d), self.linear(d, d), self.linear(d, d), self.linear(d, d), self.f32(&[d]), self.f32(&[d]));
        let block = |_| {
            let (q, k, v, o, norm_q, norm_k) = attn();
            // The paper's memory (MEMORY.md B.6): β | α gates, out_gate [D, D], norm + router.
            let form = MemoryForm::GatedDelta { out_gate: self.linear(d, d), consts: self.f32(&[d / heads + 2 * d]) };
            let memory = Some(Memory { gates: self.linear(d, 2 * heads), a_log: self.f32(&[heads]), form });
            let self_attn = Attn { q, k, v, o, norm_q, norm_k, memory };
            let (q, k, v, o, norm_q, norm_k) = attn();
            Block {
                self_attn,
                cross_attn: Attn { q, k, v, o, norm_q, norm_k, memory: None },
                norm3: Some(Norm { weight: self.f32(&[d]), bias: self.f32(&[d]) }),
                ffn: [self.linear(d, ffn), self.linear(ffn, d)],
                modulation: self.f32(&[1, 6, d]),
            }
        };
        let w = DitWeights {
            patch_embedding: self.linear(16 * 4, d),
            text_embedding: [self.linear(4096, d), self.linear(d, d)],
            time_embedding: [self.linear(256, d), self.linear(d, d)],
            time_projection: self.linear(d, 6 * d),
            blocks: (0..layers).map(block).collect(),
            head: Head { head: self.linear(d, 16 * 4), modulation: self.f32(&[1, 2, d]) },
        };
        let capacity = 9 * dims.tokens_per_frame();
        let states = (0..layers)
            .map(|_| BlockState {
                k: self.f32(&[capacity, d]),
                v: self.f32(&[capacity, d]),
                ctx_k: self.f32(&[512, d]),
                ctx_v: self.f32(&[512, d]),
                memory: Some(MemoryState {
                    khat: self.f32(&[capacity, d]),
                    beta: self.f32(&[capacity, heads]),
                    decay: self.f32(&[capacity, heads]),
                    state: self.f32(&[heads, d / heads, d / heads]),
                }),
            })
            .collect();
        (w, states, dims)
    }

    /// The chunk-pass graph of [`Planned::wan_1_3b`] for `gpu`, uncompiled.
    fn pass(&self, gpu: &Gpu) -> Builder {
        let (w, states, dims) = self.wan_1_3b();
        pass_graph(Builder::for_device(gpu, &CompileOptions::default()), &w, &states, &dims).unwrap().0
    }
}

#[test]
fn full_size_chunk_pass_plans_within_128_mib_bindings() {
    // Planned only: nothing of the weights, window or activations is allocated.
    let gpu = Gpu::new(&GpuOptions { max_binding: Some(128 << 20), ..GpuOptions::from_env() }).unwrap();
    let g = Planned(gpu.empty("planned", &[1], DType::F32).unwrap(), gpu.max_binding()).pass(&gpu);
    g.check_bindings(&gpu).unwrap();
    let graph = g.graph();
    let largest = graph.tensors.iter().filter(|t| t.kind != Kind::Param).max_by_key(|t| t.bytes()).unwrap();
    let hidden: Vec<_> =
        graph.tensors.iter().filter(|t| t.name.starts_with("blocks.0.ffn.0@")).map(|t| (t.shape.clone(), t.bytes())).collect();
    let plan = graph::plan::Plan::new(graph, true);
    println!(
        "480x832 chunk pass on {} MiB bindings: largest tensor {} {:?} {:.1} MiB; FFN hidden in {} row blocks {hidden:?}; activations {:.1} MiB planned",
        gpu.max_binding() >> 20,
        largest.name,
        largest.shape,
        largest.bytes() as f64 / (1 << 20) as f64,
        hidden.len(),
        plan.planned_bytes() as f64 / (1 << 20) as f64,
    );
    assert!(largest.bytes() <= gpu.max_binding(), "{} is {} bytes", largest.name, largest.bytes());
    assert_eq!(hidden.len(), 2, "{hidden:?}");
    // Each block folds its evictions by the chunked delta rule where the adapter allows
    // (lavapipe: blocks of 64), into W and Ũ scratch of one chunk's tokens.
    let scans: Vec<&str> = graph.nodes.iter().filter(|n| n.label == "blocks.29.self_attn.memory.scan").map(|n| n.label.as_str()).collect();
    let chunked = matches!(runtime::kernels::ssm_scan::DeltaScan::for_device(&gpu.caps), runtime::kernels::ssm_scan::DeltaScan::Chunked(_));
    assert_eq!(scans.len(), if chunked { 2 } else { 1 });
    let w = graph.tensors.iter().find(|t| t.name == "blocks.29.self_attn.memory.scan.w");
    assert_eq!(w.map(|t| t.shape.clone()), chunked.then(|| vec![4680, 1536]));
    assert_eq!(graph.nodes.iter().filter(|n| n.label == "blocks.29.ffn.2").count(), 2);

    // Bindings of 16 MiB: the split still fits the hidden (35 KiB a row), the token
    // activations [4680, 1536] (27 MiB) do not, and building says which first.
    let small = Gpu::new(&GpuOptions { max_binding: Some(16 << 20), ..GpuOptions::from_env() }).unwrap();
    let g = Planned(small.empty("planned", &[1], DType::F32).unwrap(), small.max_binding()).pass(&small);
    match g.check_bindings(&small) {
        Err(e @ GraphError::Runtime(RuntimeError::LimitExceeded { .. })) => {
            println!("{e}");
            let GraphError::Runtime(RuntimeError::LimitExceeded { what, requested, limit, .. }) = &e else { unreachable!() };
            assert_eq!((what.as_str(), *requested, *limit), ("storage binding patch_embedding", 4680 * 1536 * 4, 16 << 20));
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}
