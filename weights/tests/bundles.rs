//! Every parity bundle's checkpoint against the expected list from its config,
//! and every dit bundle's recorded schedule against ours.
mod common;
use common::parity;
use weights::{inspect, Checkpoint, DitConfig, GenerationConfig, HostTensor, Kind, Loader, MemoryType, T5Config, VaeConfig};

#[test]
fn dit_bundles_validate_and_are_finite() {
    for (name, memory) in [("dit-small", false), ("dit-window", false), ("dit-memory", true), ("dit-memory-gd", true)] {
        let dir = parity(name);
        let cfg = DitConfig::load(&dir.join("config.json")).unwrap();
        let ck = Checkpoint::open(dir.join("model.safetensors")).unwrap();
        ck.validate(&cfg.expected_tensors(memory)).unwrap();
        ck.check_finite().unwrap();
        // The other reading of the memory flag must fail, naming the memory keys.
        let e = ck.validate(&cfg.expected_tensors(!memory)).unwrap_err().to_string();
        assert!(e.contains("blocks.1.self_attn.memory.A_log"), "{name}: {e}");
        let s = inspect(dir.join("model.safetensors")).unwrap();
        assert_eq!(s.kind, if memory { Kind::DitMemory } else { Kind::Dit }, "{name}");
        assert_eq!(s.tensors, ck.tensors.len());
        assert_eq!(s.bytes, 4 * s.parameters);
    }
}

#[test]
fn vae_and_t5_bundles_validate() {
    let dir = parity("vae-small");
    let cfg = VaeConfig::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("vae.safetensors")).unwrap();
    ck.validate(&cfg.expected_tensors()).unwrap();
    assert_eq!(inspect(dir.join("vae.safetensors")).unwrap().kind, Kind::Vae);
    // Every decoder key is expected: the encoder is ignored, not the decoder.
    let decoder = ck.tensors.keys().filter(|k| k.starts_with("decoder.") || k.starts_with("conv2.")).count();
    assert_eq!(cfg.expected_tensors().len(), decoder);

    let dir = parity("t5-small");
    let cfg = T5Config::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("t5.safetensors")).unwrap();
    ck.validate(&cfg.expected_tensors()).unwrap();
    ck.check_finite().unwrap();
    assert_eq!(inspect(dir.join("t5.safetensors")).unwrap().kind, Kind::T5);
}

/// f32 values read from a JSON list in a bundle's generation.json.
fn floats(json: &serde_json::Value, field: &str) -> Vec<f32> {
    json[field].as_array().unwrap_or_else(|| panic!("{field} missing")).iter().map(|v| v.as_f64().unwrap() as f32).collect()
}

#[test]
fn schedule_matches_every_bundle() {
    for name in ["dit-small", "dit-window", "dit-memory", "dit-memory-gd"] {
        let path = parity(name).join("generation.json");
        let gen = GenerationConfig::load(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (t, s): (Vec<f32>, Vec<f32>) = gen.schedule().into_iter().unzip();
        assert_eq!(t, floats(&json, "timesteps_used"), "{name} timesteps");
        assert_eq!(s, floats(&json, "sigmas_used"), "{name} sigmas");
    }
    // The published defaults resolve to the same schedule.
    let (t, _): (Vec<f32>, Vec<f32>) = GenerationConfig::default().schedule().into_iter().unzip();
    assert_eq!(t, vec![1000.0, 937.5, 833.333_3, 625.0]);
}

#[test]
fn prefix_loader_reads_the_whole_dit() {
    let dir = parity("dit-small");
    let cfg = DitConfig::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("model.safetensors")).unwrap();
    let d = cfg.dim;
    let loader = Loader::validated(&ck, cfg.expected_tensors(false)).unwrap();
    let vb = loader.root();
    let q = vb.pp("blocks").pp(1).pp("self_attn").get("q.weight", &[d, d]).unwrap();
    assert_eq!(q, ck.get("blocks.1.self_attn.q.weight").unwrap());
    let e = vb.pp("blocks").pp(0).get("ffn.0.weight", &[d, d]).unwrap_err().to_string();
    assert!(e.contains("blocks.0.ffn.0.weight") && e.contains(&format!("[{}, {d}]", cfg.ffn_dim)), "{e}");
    assert!(vb.pp("blocks").pp(0).get_opt("self_attn.memory.A_log", &[4]).unwrap().is_none());
    for t in &cfg.expected_tensors(false) {
        vb.get(&t.key, &t.shape).unwrap();
    }
    loader.finish();
    // A checkpoint of another model fails before anything is read, naming every problem.
    let e = Loader::validated(&ck, cfg.expected_tensors(true)).err().unwrap().to_string();
    assert!(e.contains("missing    blocks.0.self_attn.memory.A_log"), "{e}");
}

/// Loading code that reads less than the config lists is a bug, caught by any load.
#[test]
#[should_panic(expected = "never read")]
fn a_loader_reading_less_than_the_list_panics() {
    let dir = parity("dit-small");
    let cfg = DitConfig::load(&dir.join("config.json")).unwrap();
    let ck = Checkpoint::open(dir.join("model.safetensors")).unwrap();
    let partial = Loader::validated(&ck, cfg.expected_tensors(false)).unwrap();
    partial.root().get("head.modulation", &[1, 2, cfg.dim]).unwrap();
    partial.finish();
}

/// `problems` of `ck` against `cfg`'s expected memory-model tensors, as one string.
fn problems(cfg: &DitConfig, ck: &Checkpoint) -> String {
    ck.validate(&cfg.expected_tensors(true)).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
}

#[test]
fn gated_delta_keys_are_checked_like_every_other_tensor() {
    let dir = parity("dit-memory-gd");
    let cfg = DitConfig::load(&dir.join("config.json")).unwrap();
    assert_eq!((cfg.memory(), cfg.memory_horizon), (MemoryType::GatedDelta, Some(12)));
    let ck = Checkpoint::open(dir.join("model.safetensors")).unwrap();
    assert_eq!(problems(&cfg, &ck), "");
    let m = "blocks.1.self_attn.memory";
    // Missing.
    let mut missing = ck.clone();
    missing.tensors.remove(&format!("{m}.router.bias"));
    let e = problems(&cfg, &missing);
    assert!(e.contains(&format!("missing    {m}.router.bias [64]")), "{e}");
    // Extra: β has no bias in B.6 (Eq. 5).
    let mut extra = ck.clone();
    extra.tensors.insert(format!("{m}.beta.bias"), HostTensor::from_f32(vec![4], &[0.0; 4]));
    let e = problems(&cfg, &extra);
    assert!(e.contains(&format!("unexpected {m}.beta.bias [4]")), "{e}");
    // Wrong shape: the router weight is [D, 1], the norm weight [d].
    let mut shape = ck.clone();
    shape.tensors.insert(format!("{m}.router.weight"), HostTensor::from_f32(vec![64], &[0.0; 64]));
    shape.tensors.insert(format!("{m}.norm.weight"), HostTensor::from_f32(vec![64], &[0.0; 64]));
    let e = problems(&cfg, &shape);
    assert!(e.contains(&format!("{m}.router.weight")) && e.contains("[64, 1]"), "{e}");
    assert!(e.contains(&format!("{m}.norm.weight")) && e.contains("[16]"), "{e}");
    // The other memory type's keys, either way round.
    let mut b3 = cfg.clone();
    b3.memory_type = "gated_linear".into();
    let e = problems(&b3, &ck);
    assert!(e.contains(&format!("missing    {m}.gate.weight")) && e.contains(&format!("unexpected {m}.out_gate.weight")), "{e}");
    let old = Checkpoint::open(parity("dit-memory").join("model.safetensors")).unwrap();
    let e = problems(&cfg, &old);
    assert!(e.contains(&format!("missing    {m}.norm.weight")) && e.contains(&format!("unexpected {m}.gate.bias")), "{e}");
    assert!(e.contains(&format!("unexpected {m}.beta.bias")), "{e}");
}
