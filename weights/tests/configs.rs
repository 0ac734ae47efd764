//! Config errors name the file, the field and the allowed range.
mod common;
use common::{parity, Scratch};
use weights::{DitConfig, GenerationConfig, MemoryType, T5Config, VaeConfig, WeightsError};

/// The bundle's config with `edit` applied, written to a scratch file.
fn edited(
    dir: &Scratch,
    bundle: &str,
    file: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> std::path::PathBuf {
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(parity(bundle).join(file)).unwrap()).unwrap();
    edit(json.as_object_mut().unwrap());
    let p = dir.join(file);
    std::fs::write(&p, json.to_string()).unwrap();
    p
}

fn field_of(e: WeightsError) -> (String, String) {
    match e {
        WeightsError::Config { field, message, path } => {
            assert_eq!(path.extension().and_then(|e| e.to_str()), Some("json"), "{path:?}");
            (field, message)
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn dit_config_errors_name_the_field() {
    let dir = Scratch::new("cfg-dit");
    let p = edited(&dir, "dit-small", "config.json", |j| drop(j.insert("num_heads".into(), 5.into())));
    let (field, msg) = field_of(DitConfig::load(&p).unwrap_err());
    assert_eq!(field, "num_heads");
    assert!(msg.contains("dim 64 is not divisible by num_heads 5"), "{msg}");
    let p = edited(&dir, "dit-small", "config.json", |j| drop(j.insert("num_heads".into(), 16.into())));
    assert!(field_of(DitConfig::load(&p).unwrap_err()).1.contains("head dim 4"));
    let p = edited(&dir, "dit-small", "config.json", |j| drop(j.remove("dim")));
    assert_eq!(field_of(DitConfig::load(&p).unwrap_err()).0, "dim");
    let p = edited(&dir, "dit-window", "config.json", |j| drop(j.insert("sink_size".into(), 9.into())));
    assert_eq!(field_of(DitConfig::load(&p).unwrap_err()).0, "sink_size");
    let p = edited(&dir, "dit-small", "config.json", |j| drop(j.insert("local_attn_size".into(), 0.into())));
    assert_eq!(field_of(DitConfig::load(&p).unwrap_err()).0, "local_attn_size");
    let p = edited(&dir, "dit-small", "config.json", |j| drop(j.insert("ffn_dim".into(), (1u64 << 40).into())));
    assert!(field_of(DitConfig::load(&p).unwrap_err()).1.contains("outside 1..="));
    // Defaults of the cache settings when a plain Wan config omits them.
    let p = edited(&dir, "dit-small", "config.json", |j| {
        j.remove("local_attn_size");
        j.remove("sink_size");
        j.remove("window_size");
    });
    let c = DitConfig::load(&p).unwrap();
    assert_eq!((c.local_attn_size, c.sink_size, c.window_size), (-1, 0, [-1, -1]));
}

#[test]
fn memory_type_and_horizon_are_checked() {
    let dir = Scratch::new("cfg-memory");
    // Absent: B.3, as every config before B.6.
    let c = DitConfig::load(&parity("dit-memory").join("config.json")).unwrap();
    assert_eq!((c.memory(), c.memory_horizon), (MemoryType::GatedLinear, None));
    let p = edited(&dir, "dit-memory-gd", "config.json", |j| drop(j.insert("memory_type".into(), "mamba".into())));
    let (field, msg) = field_of(DitConfig::load(&p).unwrap_err());
    assert_eq!(field, "memory_type");
    assert!(msg.contains("\"mamba\"") && msg.contains("gated_linear") && msg.contains("gated_delta"), "{msg}");
    let p = edited(&dir, "dit-memory-gd", "config.json", |j| drop(j.remove("memory_horizon")));
    let (field, msg) = field_of(DitConfig::load(&p).unwrap_err());
    assert_eq!(field, "memory_horizon");
    assert!(msg.contains("required by \"gated_delta\""), "{msg}");
    let p = edited(&dir, "dit-memory-gd", "config.json", |j| drop(j.insert("memory_horizon".into(), 0.into())));
    assert_eq!(field_of(DitConfig::load(&p).unwrap_err()).0, "memory_horizon");
}

#[test]
fn gated_delta_window_must_hold_a_chunk_besides_the_sinks() {
    let dir = Scratch::new("cfg-memory-window");
    let path = parity("dit-memory-gd").join("config.json");
    let c = DitConfig::load(&path).unwrap();
    // 9 − 3 = 6 frames beside the sinks: chunks of up to 6 frames.
    c.check_chunk(&path, 3).unwrap();
    c.check_chunk(&path, 6).unwrap();
    let (field, msg) = field_of(c.check_chunk(&path, 7).unwrap_err());
    assert_eq!(field, "local_attn_size");
    assert!(msg.contains("local_attn_size − sink_size ≥ num_frame_per_block") && msg.contains("9 − 3 < 7"), "{msg}");
    let p = edited(&dir, "dit-memory-gd", "config.json", |j| drop(j.insert("sink_size".into(), 7.into())));
    let c = DitConfig::load(&p).unwrap();
    assert!(field_of(c.check_chunk(&p, 3).unwrap_err()).1.contains("9 − 7 < 3"));
    // Unbounded windows never evict; B.3 is not refused here (its caches need no clean pass first).
    let p = edited(&dir, "dit-memory-gd", "config.json", |j| drop(j.insert("local_attn_size".into(), (-1).into())));
    DitConfig::load(&p).unwrap().check_chunk(&p, 7).unwrap();
    let c = DitConfig::load(&parity("dit-memory").join("config.json")).unwrap();
    c.check_chunk(&path, 7).unwrap();
}

#[test]
fn generation_config_errors_name_the_field() {
    let dir = Scratch::new("cfg-gen");
    let p = dir.join("generation.json");
    for (json, field) in [
        (r#"{"denoising_step_list": [1000, 0]}"#, "denoising_step_list"),
        (r#"{"denoising_step_list": [500, 750]}"#, "denoising_step_list"),
        (r#"{"num_train_timestep": 4294967295}"#, "num_train_timestep"),
        (r#"{"timestep_shift": -1.0}"#, "timestep_shift"),
        (r#"{"num_latent_frames": 10}"#, "num_latent_frames"),
        (r#"{"latent_height": 5}"#, "latent_height"),
        (r#"{"num_frame_per_block": "three"}"#, "(file)"),
    ] {
        std::fs::write(&p, json).unwrap();
        assert_eq!(field_of(GenerationConfig::load(&p).unwrap_err()).0, field, "{json}");
    }
    std::fs::write(&p, "{}").unwrap();
    assert_eq!(GenerationConfig::load(&p).unwrap(), GenerationConfig::default());
    // Unwarped steps are timesteps themselves, with the σ of the nearest table entry.
    let plain = GenerationConfig { warp_denoising_step: false, timestep_shift: 1.0, ..GenerationConfig::default() };
    assert_eq!(plain.schedule(), vec![(1000.0, 1.0), (750.0, 0.75), (500.0, 0.5), (250.0, 0.25)]);
}

#[test]
fn vae_and_t5_config_errors_name_the_field() {
    let dir = Scratch::new("cfg-vae");
    let p = edited(&dir, "vae-small", "config.json", |j| drop(j.insert("temperal_downsample".into(), serde_json::json!([true]))));
    assert_eq!(field_of(VaeConfig::load(&p).unwrap_err()).0, "temperal_downsample");
    let p = edited(&dir, "vae-small", "config.json", |j| drop(j.insert("latent_std".into(), serde_json::json!([1.0]))));
    assert_eq!(field_of(VaeConfig::load(&p).unwrap_err()).0, "latent_std");
    let p = edited(&dir, "vae-small", "config.json", |j| drop(j.insert("dim_mult".into(), serde_json::json!([1, 2, 4, 4, 4]))));
    assert_eq!(field_of(VaeConfig::load(&p).unwrap_err()).0, "dim_mult");
    let p = edited(&dir, "t5-small", "config.json", |j| drop(j.insert("num_heads".into(), 3.into())));
    assert_eq!(field_of(T5Config::load(&p).unwrap_err()).0, "num_heads");
}

#[test]
fn vae_attention_and_t5_shared_pos_change_the_expected_keys() {
    let vae = VaeConfig::load(&parity("vae-small").join("config.json")).unwrap();
    // Attention after every residual block of the second stage (scale 1/2).
    let with_attn = VaeConfig { attn_scales: vec![0.5], ..vae.clone() };
    let e = with_attn.expected_tensors();
    assert_eq!(e.len(), vae.expected_tensors().len() + 2 * 5);
    assert_eq!(e.get("decoder.upsamples.4.to_qkv.weight").map(|t| t.shape.clone()), Some(vec![96, 32, 1, 1]));
    let t5 = T5Config::load(&parity("t5-small").join("config.json")).unwrap();
    let shared = T5Config { shared_pos: true, ..t5.clone() }.expected_tensors();
    assert_eq!(shared.len(), t5.expected_tensors().len() + 1 - t5.num_layers);
    assert!(shared.get("pos_embedding.embedding.weight").is_some());
}

#[test]
fn the_released_wan_vae_config_is_valid() {
    let cfg = VaeConfig::wan2_1();
    cfg.validate(std::path::Path::new("VaeConfig::wan2_1")).unwrap();
    assert_eq!(cfg.decoder_dims(), [384, 384, 384, 192, 96]);
    let e = cfg.expected_tensors();
    // Stage 1 starts from the resample's 192 channels: a shortcut to 384.
    assert_eq!(e.get("decoder.upsamples.4.shortcut.weight").map(|t| t.shape.clone()), Some(vec![384, 192, 1, 1, 1]));
    assert_eq!(e.get("decoder.upsamples.3.time_conv.weight").map(|t| t.shape.clone()), Some(vec![768, 384, 3, 1, 1]));
}

#[test]
fn the_wan_1_3b_generator_config_is_valid() {
    let cfg = DitConfig::wan2_1_t2v_1_3b();
    cfg.validate(std::path::Path::new("DitConfig::wan2_1_t2v_1_3b")).unwrap();
    assert_eq!(cfg.head_dim(), 128);
    // MODEL.md A: ≈ 2.6 GB of bf16 weights for the DiT, i.e. about 1.3 B parameters
    // (the memory adds its projections on top).
    let params: usize = cfg.expected_tensors(false).iter().map(|t| t.shape.iter().product::<usize>()).sum();
    assert!((1.25e9..1.45e9).contains(&(params as f64)), "{params} parameters");
}
