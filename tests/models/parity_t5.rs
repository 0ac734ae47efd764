//! The umT5 encoder at parity with the official code: the t5-small bundle through
//! `replay` (f32 within 1e-3 × std; f16/bf16 figures printed), the f64 reference
//! against the bundle, and the GPU against the reference at other shapes (longer
//! texts reaching the logarithmic and clamped buckets, other head counts, shared
//! tables), so the model is matched rather than the file.
use graph::models::t5::T5Encoder;
use runtime::DType;
use std::collections::BTreeMap;
use videossm::replay::{replay, ReplayOptions};
use videossm_suite::reference::t5 as reference;
use videossm_suite::t5::{host_weights, random_checkpoint, reference_config};
use videossm_suite::{err_over_std, gpu, load_host, parity_dir};
use weights::{Checkpoint, T5Config};

fn bundle_error(wdtype: DType) -> f64 {
    let dir = parity_dir("t5-small");
    let expected = load_host(&dir.join("expected.safetensors"));
    let (shape, want) = &expected["context"];
    let got = replay(gpu().clone(), &dir, ReplayOptions { wdtype, memory: true, ..Default::default() }).unwrap();
    let (gshape, g) = &got["context"];
    assert_eq!(gshape, shape, "t5-small: context shape");
    let e = err_over_std(g, want);
    println!("t5-small {wdtype}: context max|err| = {e:.3e} × std");
    e
}

#[test]
fn t5_small_replay_f32() {
    let e = bundle_error(DType::F32);
    assert!(e <= 1e-3, "t5-small f32: max|err| = {e:.3e} × std (allowed 1e-3)");
}

#[test]
fn t5_small_replay_f16_bf16() {
    for dtype in [DType::F16, DType::BF16] {
        let e = bundle_error(dtype);
        // Weights rounded to 11 (f16) or 8 (bf16) mantissa bits, f32 activations.
        assert!(e <= 3e-2, "t5-small {dtype}: max|err| = {e:.3e} × std (allowed 3e-2)");
    }
}

#[test]
fn reference_reproduces_the_bundle() {
    let dir = parity_dir("t5-small");
    let cfg = T5Config::load(&dir.join("config.json")).unwrap();
    let w: BTreeMap<String, Vec<f32>> = load_host(&dir.join("t5.safetensors")).into_iter().map(|(k, (_, v))| (k, v)).collect();
    let inputs = load_host(&dir.join("inputs.safetensors"));
    let ids: Vec<usize> = inputs["ids"].1.iter().map(|&v| v as usize).collect();
    let mask: Vec<bool> = inputs["mask"].1.iter().map(|&v| v != 0.0).collect();
    let got = reference::encode(&reference_config(&cfg), &w, &ids, &mask);
    let want = &load_host(&dir.join("expected.safetensors"))["context"].1;
    let e = err_over_std(&got, want);
    println!("t5-small f64 reference: max|err| = {e:.3e} × std");
    assert!(e <= 1e-5, "reference vs t5-small: {e:.3e} × std");
}

struct Case {
    cfg: T5Config,
    len: usize,
    tokens: usize,
    seed: u64,
}

fn gpu_vs_reference(c: &Case) {
    let ck: Checkpoint = random_checkpoint(&c.cfg, c.seed);
    let mut rng = videossm_suite::Rng::new(c.seed + 100);
    let ids: Vec<u32> =
        rng.normals(c.len, 1.0).iter().enumerate().map(|(i, v)| ((v.abs() * 1e4) as usize + i) as u32 % c.cfg.vocab as u32).collect();
    let mask: Vec<u32> = (0..c.len).map(|i| (i < c.tokens) as u32).collect();
    let mut enc = T5Encoder::load(gpu().clone(), ck.clone(), &c.cfg, c.len, DType::F32).unwrap();
    let got = enc.encode(&ids, &mask).unwrap();
    let ids_r: Vec<usize> = ids.iter().map(|&v| v as usize).collect();
    let mask_r: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    let want = reference::encode(&reference_config(&c.cfg), &host_weights(&ck), &ids_r, &mask_r);
    let e = err_over_std(&got, &want);
    let cfg = &c.cfg;
    println!(
        "L={} tokens={} dim={} heads={} buckets={} shared={}: max|err| = {e:.3e} × std",
        c.len, c.tokens, cfg.dim, cfg.num_heads, cfg.num_buckets, cfg.shared_pos
    );
    assert!(e <= 1e-3, "GPU vs reference: {e:.3e} × std");
    assert!(got[c.tokens * cfg.dim..].iter().all(|&v| v == 0.0), "padding rows must be zero");
}

fn config(dim: usize, dim_attn: usize, heads: usize, buckets: usize, shared_pos: bool) -> T5Config {
    T5Config {
        vocab: 300,
        dim,
        dim_attn,
        dim_ffn: 2 * dim + 8,
        num_heads: heads,
        num_layers: 2,
        num_buckets: buckets,
        shared_pos,
        dropout: 0.0,
    }
}

#[test]
fn gpu_matches_reference_long_text_per_layer_tables() {
    // 160 tokens: distances past 128 (the clamped bucket), three query workgroups,
    // dim_attn ≠ dim, head dim 16, 16 buckets.
    gpu_vs_reference(&Case { cfg: config(48, 64, 4, 16, false), len: 160, tokens: 131, seed: 1 });
}

#[test]
fn gpu_matches_reference_shared_table_no_padding() {
    gpu_vs_reference(&Case { cfg: config(40, 40, 2, 32, true), len: 40, tokens: 40, seed: 2 });
    gpu_vs_reference(&Case { cfg: config(32, 32, 4, 8, false), len: 7, tokens: 1, seed: 3 });
}

#[test]
fn encode_rejects_bad_inputs() {
    let cfg = config(16, 16, 2, 8, false);
    let mut enc = T5Encoder::load(gpu().clone(), random_checkpoint(&cfg, 4), &cfg, 4, DType::F32).unwrap();
    let mut err = |ids: &[u32], mask: &[u32]| enc.encode(ids, mask).unwrap_err().to_string();
    let e = err(&[1, 2, 3], &[1, 1, 1]);
    assert!(e.contains("text length of 4"), "{e}");
    let e = err(&[1, 2, 300, 0], &[1, 1, 1, 0]);
    assert!(e.contains("id 300 at position 2"), "{e}");
    let e = err(&[1, 2, 3, 0], &[1, 0, 1, 0]);
    assert!(e.contains("mask") && e.contains("position 2"), "{e}");
    // A checkpoint that does not fit the config names the key.
    let mut ck = random_checkpoint(&cfg, 5);
    ck.tensors.remove("blocks.1.ffn.gate.0.weight");
    let e = T5Encoder::load(gpu().clone(), ck, &cfg, 4, DType::F32).err().unwrap().to_string();
    assert!(e.contains("blocks.1.ffn.gate.0.weight"), "{e}");
}

#[test]
fn text_encoder_encodes_each_prompt_once() {
    use graph::models::t5::{TextEncoder, Tokenizer};
    let cfg = config(32, 32, 4, 32, false);
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/t5_tokenizer.json");
    let tokenizer = Tokenizer::from_file(&fixture, 24).unwrap();
    let encoder = T5Encoder::load(gpu().clone(), random_checkpoint(&cfg, 6), &cfg, 24, DType::F32).unwrap();
    let mut text = TextEncoder::new(tokenizer, encoder).unwrap();
    let a = text.embed("a cat sits on the mat").unwrap();
    let b = text.embed("  a cat   sits on the mat\n").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b), "the same cleaned prompt is encoded once");
    let c = text.embed("a dog").unwrap();
    assert_eq!(text.cached(), 2);
    assert_ne!(a, c);
    let enc = text.tokenizer.encode("a dog").unwrap();
    assert_eq!(*c, text.encoder.encode(&enc.ids, &enc.mask).unwrap());
    assert_eq!(a.len(), 24 * cfg.dim);
}

#[test]
fn umt5_xxl_config_is_wans() {
    let c = T5Config::umt5_xxl();
    c.validate(std::path::Path::new("umt5_xxl")).unwrap();
    // Per layer: norm1, q, k, v, o, norm2, gate.0, fc1, fc2, its own bias table; plus token_embedding and norm.
    assert_eq!(c.expected_tensors().tensors.len(), 2 + 24 * 10);
    assert_eq!((c.dim / c.num_heads, c.num_buckets, c.shared_pos), (64, 32, false));
}

#[test]
fn the_encoder_streams_one_linear_at_a_time_and_keeps_nothing_between_prompts() {
    // A device of its own, so that no other test's buffers move the allocator's figures.
    let gpu = std::sync::Arc::new(runtime::Gpu::new(&runtime::GpuOptions::from_env()).unwrap());
    let cfg = T5Config { num_layers: 4, ..config(64, 64, 4, 32, false) };
    let allocated = || {
        gpu.wait().unwrap();
        gpu.memory().map(|m| m.allocated)
    };
    let before = allocated();
    let mut enc = T5Encoder::load(gpu.clone(), random_checkpoint(&cfg, 7), &cfg, 32, DType::F32).unwrap();
    assert_eq!(allocated(), before, "loading keeps the weights on the host");
    let mask: Vec<u32> = (0..32).map(|i| (i < 9) as u32).collect();
    let ids: Vec<u32> = (0..32).map(|i| (i * 7 % cfg.vocab) as u32).collect();
    enc.encode(&ids, &mask).unwrap();
    let s = enc.stats();
    // The largest piece holds an FFN matrix [dim_ffn, dim] in f32 with a few tokens' rows
    // around it; one layer's seven linears, held at once before, were 4.9 times that.
    let linear = 4 * cfg.dim as u64 * cfg.dim_ffn as u64;
    println!("{s:?}; the largest linear {linear} B");
    assert_eq!(s.tokens, 9);
    assert!(s.piece_bytes >= linear && s.piece_bytes < 2 * linear, "{} B held at once", s.piece_bytes);
    if let Some(grew) = s.allocated_bytes {
        // One linear and its piece, never two (wgpu frees a dropped buffer at the next
        // poll), beside its layer's small tensors the piece does not bind (2 KiB here).
        assert!(grew >= linear && grew <= s.piece_bytes + (2 << 10), "the allocator saw {grew} B");
    }
    assert!(
        allocated() <= before,
        "nothing of the encoder stays on the device between prompts: {:?} after, {before:?} before",
        allocated()
    );
}

/// umT5's linears are uploaded from the checkpoint's 16-bit bits (transposed, no pass
/// through f32): the device must hold exactly `Wᵀ` of the stored values, in one block
/// and in the column blocks a small binding forces, and a weight of the wrong size is
/// an error naming it.
#[test]
fn sixteen_bit_weights_upload_as_their_own_bits() {
    use graph::models::linear::Linear;
    use runtime::{Gpu, GpuOptions};
    let (out, inp) = (600, 40);
    let mut rng = videossm_suite::Rng::new(41);
    for (wdtype, stored) in [(DType::BF16, weights::DType::BF16), (DType::F16, weights::DType::F16)] {
        let values: Vec<f32> = rng.normals(out * inp, 1.0).into_iter().map(|v| wdtype.round(v)).collect();
        let data: Vec<u8> = match stored {
            weights::DType::BF16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            _ => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        };
        let host = weights::HostTensor { shape: vec![out, inp], dtype: stored, data };
        // 32 KiB bindings: 600 columns of 40 rows in 16-bit are 46.9 KiB, so blocks of 256 columns.
        for cap in [None, Some(32 << 10)] {
            let g = Gpu::new(&GpuOptions { max_binding: cap, ..GpuOptions::from_env() }).unwrap();
            let l = Linear::upload_host(&g, "w", out, inp, wdtype, &host, None).unwrap();
            assert_eq!(l.weight.len(), if cap.is_some() { 3 } else { 1 }, "{wdtype} blocks");
            let mut col = 0;
            for block in &l.weight {
                let (rows, cols) = (block.shape[0], block.shape[1]);
                let got = g.download(block).unwrap();
                let want: Vec<f32> =
                    (0..rows).flat_map(|i| (col..col + cols).map(move |o| (i, o))).map(|(i, o)| values[o * inp + i]).collect();
                assert_eq!(got, want, "{wdtype} weight, columns {col}..{}", col + cols);
                col += cols;
            }
            assert_eq!(col, out);
        }
        let short = weights::HostTensor { shape: vec![out, inp - 1], dtype: stored, data: vec![0; out * (inp - 1) * 2] };
        let err = Linear::upload_host(gpu(), "blocks.0.ffn.fc1.weight", out, inp, wdtype, &short, None).err().expect("a short weight");
        assert!(err.to_string().contains("blocks.0.ffn.fc1.weight"), "{err}");
    }
}
