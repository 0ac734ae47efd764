//! The generator at parity with the official code: every tensor of each dit-*
//! bundle's expected.safetensors within 1e-3 × its std (FORMAT.md), f32 path.
use graph::models::dit::graph::pass_graph;
use graph::models::dit::weights::{Attn, Block, DitWeights, Head, Linear, Memory, MemoryForm, Norm};
use graph::models::dit::{BlockState, DitDims, MemoryState};
use graph::models::vae::{self, VaeDecoder, VaeOptions};
use graph::{Builder, CompileOptions, GraphError, Kind};
use runtime::{DType, Gpu, GpuOptions, RuntimeError, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use videossm::generate::vae_budget;
use videossm::replay::{replay, ReplayOptions};
use videossm_suite::{err_over_std, gpu, load_host, parity_dir, random_vae_checkpoint};
use weights::VaeConfig;

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

/// The worst error × std over the `flow.*` tensors and over `latents` of one replay
/// of `dir` against its expected tensors, and the replay itself.
fn worst_flow_and_latents(dir: &Path, opts: ReplayOptions) -> (f64, f64, videossm::replay::Tensors) {
    let expected = load_host(&dir.join("expected.safetensors"));
    let got = replay(gpu().clone(), dir, opts).unwrap();
    let (mut flow, mut latents) = (0f64, 0f64);
    for (key, (_, want)) in &expected {
        let e = err_over_std(&got[key].1, want);
        if key.starts_with("flow.") {
            flow = flow.max(e);
        } else if key == "latents" {
            latents = latents.max(e);
        }
    }
    (flow, latents, got)
}

#[test]
fn dit_bundles_with_f16_kv_caches() {
    // The attention caches (KV window, text K/V, memory keys) in f16, forced on for every
    // weight dtype, beside the same run with f32 caches, and the change f16 alone makes
    // (relative to the f32-cache run's std). The official bundles stay within issue 26's
    // 2e-2 × std of their expected tensors; the trained tiny model with bf16 weights is
    // beyond it with f32 caches already (bf16 weights alone: ~1e-1), so there the bar is
    // on what the f16 caches change. With VIDEOSSM_KERNELS=gpu and 16-bit weights the
    // tiled attention already stages K/V as f16 tiles (rounded the same way), so there
    // only the memory keys change. The table is docs/gpu-memory.md's.
    if !gpu().caps.f16 {
        eprintln!("f16 KV caches: skipped, this adapter has no shader-f16 (the caches stay f32 there)");
        return;
    }
    let bundles = ["dit-small", "dit-window", "dit-memory", "dit-memory-gd"].map(|n| (n.to_string(), parity_dir(n)));
    let bundles = bundles.into_iter().chain([("bundle-tiny/dit".to_string(), tiny_bundle())]);
    println!("| bundle | weights | flow.* f32 caches | flow.* f16 caches | latents f32 caches | latents f16 caches | f16 vs f32 caches (flow.*) |");
    for (name, dir) in bundles {
        for wdtype in [DType::F32, DType::F16, DType::BF16] {
            let run = |kv_f16| worst_flow_and_latents(&dir, ReplayOptions { wdtype, kv_f16: Some(kv_f16), ..Default::default() });
            let ((f32_flow, f32_lat, off), (f16_flow, f16_lat, on)) = (run(false), run(true));
            let change =
                on.iter().filter(|(k, _)| k.starts_with("flow.")).map(|(k, (_, v))| err_over_std(v, &off[k].1)).fold(0.0, f64::max);
            println!("| {name} | {wdtype} | {f32_flow:.2e} | {f16_flow:.2e} | {f32_lat:.2e} | {f16_lat:.2e} | {change:.2e} |");
            let official = !name.starts_with("bundle-tiny");
            let what =
                format!("{name} {wdtype} weights, f16 caches: flow.* {f16_flow:.3e}, latents {f16_lat:.3e}, change {change:.3e} × std");
            assert!(change <= 2e-2 && (!official || (f16_flow <= 2e-2 && f16_lat <= 2e-2)), "{what}");
        }
    }
}

#[test]
fn f16_kv_caches_halve_the_cache_state() {
    // dit-window has no memory: its pass graph's state is the KV window and the text K/V
    // only, all of which become f16; the prompt graph's is the text K/V.
    if !gpu().caps.f16 {
        eprintln!("f16 KV caches: skipped, this adapter has no shader-f16");
        return;
    }
    let dir = parity_dir("dit-window");
    let cfg = weights::DitConfig::load(&dir.join("config.json")).unwrap();
    let gen = weights::GenerationConfig::load(&dir.join("generation.json")).unwrap();
    let ck = weights::Checkpoint::open(dir.join("model.safetensors")).unwrap();
    let w = graph::models::dit::load::load(gpu(), &cfg, &ck, DType::BF16, true).unwrap();
    let dims = DitDims::new(&cfg, gen.num_frame_per_block, gen.latent_height.unwrap(), gen.latent_width.unwrap());
    let capacity = cfg.local_attn_size as usize;
    let state_bytes = |kv_f16| {
        let opts = CompileOptions { kv_f16: Some(kv_f16), ..Default::default() };
        let g = graph::models::dit::session::Generator::new(gpu().clone(), &w, dims.clone(), capacity, cfg.sink_size, opts).unwrap();
        let dtypes: Vec<DType> = g.states().iter().flat_map(|s| [s.k.dtype, s.v.dtype, s.ctx_k.dtype, s.ctx_v.dtype]).collect();
        assert!(dtypes.iter().all(|&d| d == if kv_f16 { DType::F16 } else { DType::F32 }), "{dtypes:?}");
        g.graphs().map(|c| c.report().state_bytes)
    };
    let (f32_bytes, f16_bytes) = (state_bytes(false), state_bytes(true));
    println!("dit-window state bytes [prompt, pass]: f32 caches {f32_bytes:?}, f16 caches {f16_bytes:?}");
    assert_eq!(f16_bytes.map(|b| 2 * b), f32_bytes);
    // The default for 16-bit weights on an adapter with f16 is f16 caches.
    let default = graph::models::cache_dtype(&gpu().caps, DType::BF16, &CompileOptions { kv_f16: None, ..Default::default() });
    assert_eq!(default, DType::F16);
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
        self.wan_1_3b_with(DType::F32)
    }

    /// [`Planned::wan_1_3b`] with its attention caches (K/V window, text K/V, k̂) in `kv`.
    fn wan_1_3b_with(&self, kv: DType) -> (DitWeights, Vec<BlockState>, DitDims) {
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
                k: self.t(&[capacity, d], kv),
                v: self.t(&[capacity, d], kv),
                ctx_k: self.t(&[512, d], kv),
                ctx_v: self.t(&[512, d], kv),
                memory: Some(MemoryState {
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
fn full_size_state_halves_its_caches_in_f16() {
    // Wan2.1-T2V-1.3B with the B.6 memory, a 9-frame window at 480×832 (14040 slots),
    // planned only: the session state a Generator allocates, with f32 and f16 caches.
    let gpu = gpu();
    let planned = Planned(gpu.empty("planned", &[1], DType::F32).unwrap(), gpu.max_binding());
    let bytes = |kv| -> [u64; 2] {
        let (_, states, _) = planned.wan_1_3b_with(kv);
        let caches = states.iter().flat_map(|s| [&s.k, &s.v, &s.ctx_k, &s.ctx_v]);
        let rest = states.iter().flat_map(|s| s.memory.as_ref().map(|m| [&m.beta, &m.decay, &m.state])).flatten();
        [caches.map(|t| t.bytes()).sum(), rest.map(|t| t.bytes()).sum()]
    };
    let ([c32, rest], [c16, rest16]) = (bytes(DType::F32), bytes(DType::F16));
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "full-size session state: caches {:.0} MiB (f32) → {:.0} MiB (f16), the rest (β, a, S) {:.0} MiB; total {:.0} → {:.0} MiB",
        mib(c32),
        mib(c16),
        mib(rest),
        mib(c32 + rest),
        mib(c16 + rest)
    );
    assert_eq!((2 * c16, rest16), (c32, rest));
    // K and V of the window (30 blocks × 2 × 14040 × 1536 values, what every attention
    // call reads) and the prompt's: no cache of memory keys besides them.
    assert_eq!(c32, 30 * (2 * 14040 + 2 * 512) * 1536 * 4);
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

#[test]
fn full_size_vae_plans_within_the_chunk_pass_activations() {
    // A session's decoder beside the 480×832 chunk pass, on 128 MiB bindings, planned
    // only: its row bands (`vae_budget`) keep its activations within the pass's.
    let gpu = Arc::new(Gpu::new(&GpuOptions { max_binding: Some(128 << 20), ..GpuOptions::from_env() }).unwrap());
    let pass = graph::plan::Plan::new(Planned(gpu.empty("planned", &[1], DType::F32).unwrap(), gpu.max_binding()).pass(&gpu).graph(), true);
    let cfg = VaeConfig::wan2_1();
    let decoder = |activation_budget| {
        let weights = vae::load::load(&gpu, &cfg, &random_vae_checkpoint(&cfg, 3), DType::BF16).unwrap();
        VaeDecoder::new(gpu.clone(), weights, &cfg, 60, 104, VaeOptions { activation_budget, ..VaeOptions::default() }).unwrap()
    };
    let (vae, fewest) = (decoder(Some(vae_budget(pass.planned_bytes()))), decoder(None));
    let (m, least) = (vae.memory(vae.chunk_limit()).unwrap(), fewest.memory(1).unwrap());
    // The device's shared buffers: per slot, the larger of the pass's and the decoder's.
    let shared = |d: &VaeDecoder| -> u64 {
        let v = d.pooled_sizes(3).unwrap();
        (0..v.len().max(pass.buffers.len())).map(|i| v.get(i).max(pass.buffers.get(i)).copied().unwrap_or(0)).sum()
    };
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "480x832: chunk pass {:.1} MiB; VAE in {} bands {:.1} MiB, {} latent frame(s) a call, shared {:.1} MiB \
         (in {} bands, as the bindings allow: {:.1} MiB, shared {:.1} MiB)",
        mib(pass.planned_bytes()),
        m.bands,
        mib(m.pooled_bytes),
        vae.chunk_limit(),
        mib(shared(&vae)),
        least.bands,
        mib(least.pooled_bytes),
        mib(shared(&fewest)),
    );
    assert!(m.pooled_bytes <= pass.planned_bytes() && m.bands > least.bands, "{m:?}");
}

#[test]
fn full_size_chunk_pass_dispatches_within_the_grid_limits() {
    // Every node of the 480×832 chunk pass (4680 tokens, 12 heads, a 14040-slot window),
    // planned only, with the kernels a CPU adapter and a GPU get: each grid dimension
    // within the 65535 workgroups WebGPU guarantees. Larger dispatches must fold into y
    // (each family's folded grid is run against its reference in the kernel tests); a
    // family that did not fold would fail here, at the size only users run.
    for kernels in [runtime::DeviceKind::Cpu, runtime::DeviceKind::Gpu] {
        let opts = GpuOptions { max_binding: Some(128 << 20), kernels: Some(kernels), ..GpuOptions::from_env() };
        let gpu = Gpu::new(&opts).unwrap();
        let g = Planned(gpu.empty("planned", &[1], DType::F32).unwrap(), gpu.max_binding()).pass(&gpu);
        let limit = 65_535;
        let mut widest: std::collections::BTreeMap<String, [u32; 3]> = Default::default();
        // The scans are recorded idle and get a chunk's evicted slots per run: checked with those.
        let evicting = runtime::kernels::ssm_scan::Params::scan(12, 128, &[0..4680]);
        for n in &g.graph().nodes {
            let params = if n.label.ends_with(".memory.scan") { bytemuck::bytes_of(&evicting).to_vec() } else { n.params.clone() };
            let grid = n.kernel.workgroups_raw(&params);
            assert!(grid.iter().all(|&d| (1..=limit).contains(&d)), "{kernels:?}: {} ({}) dispatches {grid:?}", n.label, n.kernel.label());
            let family = n.kernel.label().split('_').next().unwrap_or_default().to_string();
            let w = widest.entry(family).or_default();
            if grid.iter().product::<u32>() > w.iter().product::<u32>() {
                *w = grid;
            }
        }
        println!("{kernels:?} kernels, largest grid per family: {widest:?}");
        assert!(widest.len() >= 6, "{widest:?}");
    }
}
