//! The loaders against the parity bundles (../shared/parity) and against bad files.
use std::path::PathBuf;
use weights::{Checkpoint, DitConfig, GenerationConfig, WeightsError};

fn parity(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/parity").join(name);
    assert!(dir.is_dir(), "parity bundle {} is missing: ../shared must sit beside the checkout", dir.display());
    dir
}

#[test]
fn every_dit_bundle_validates_and_its_schedule_matches() {
    for name in ["dit-small", "dit-window", "dit-memory"] {
        let dir = parity(name);
        let cfg = DitConfig::load(&dir.join("config.json")).unwrap();
        let ck = Checkpoint::open(dir.join("model.safetensors")).unwrap();
        let memory = ck.contains("blocks.0.self_attn.memory.A_log");
        assert_eq!(memory, name == "dit-memory");
        ck.validate(&cfg.expected_tensors(memory)).unwrap();
        let gen = GenerationConfig::load(&dir.join("generation.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("generation.json")).unwrap()).unwrap();
        let want_t: Vec<f32> = json["timesteps_used"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let want_s: Vec<f32> = json["sigmas_used"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let (t, s): (Vec<f32>, Vec<f32>) = gen.schedule().into_iter().unzip();
        assert_eq!(t, want_t, "{name} timesteps");
        assert_eq!(s, want_s, "{name} sigmas");
    }
}

fn write_st(path: &std::path::Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let data: Vec<(String, Vec<u8>, Vec<usize>)> =
        tensors.iter().map(|(k, s, v)| (k.to_string(), v.iter().flat_map(|x| x.to_le_bytes()).collect(), s.clone())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(k, b, s)| (k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    safetensors::tensor::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn bad_checkpoints_get_errors_naming_the_fault() {
    let dir = std::env::temp_dir().join(format!("videossm-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let expected = vec![("a.weight".to_string(), vec![2, 3]), ("b".to_string(), vec![4])];
    let good = dir.join("good.safetensors");
    write_st(&good, &[("a.weight", vec![2, 3], vec![0.5; 6]), ("b", vec![4], vec![1.0; 4])]);
    Checkpoint::open(&good).unwrap().validate(&expected).unwrap();

    // Truncated: the data section is shorter than the header promises.
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    assert!(matches!(Checkpoint::open(&truncated), Err(WeightsError::Format { .. })));
    // Header length beyond the file.
    let lying = dir.join("lying.safetensors");
    let mut b = bytes.clone();
    b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&lying, &b).unwrap();
    assert!(matches!(Checkpoint::open(&lying), Err(WeightsError::Format { .. })));

    // Wrong shape, missing and unexpected tensors are all listed at once.
    let wrong = dir.join("wrong.safetensors");
    write_st(&wrong, &[("a.weight", vec![3, 2], vec![0.5; 6]), ("c", vec![1], vec![0.0])]);
    match Checkpoint::open(&wrong).unwrap().validate(&expected) {
        Err(WeightsError::Mismatch { problems, path }) => {
            assert_eq!(path, wrong);
            let text = problems.join("\n");
            assert!(text.contains("shape      a.weight"), "{text}");
            assert!(text.contains("missing    b"), "{text}");
            assert!(text.contains("unexpected c"), "{text}");
        }
        other => panic!("expected a mismatch report, got {other:?}"),
    }

    // A NaN is named with its tensor.
    let nan = dir.join("nan.safetensors");
    write_st(&nan, &[("a.weight", vec![2, 3], vec![0.0, 1.0, f32::NAN, 0.0, 0.0, 0.0]), ("b", vec![4], vec![1.0; 4])]);
    match Checkpoint::open(&nan).unwrap().validate(&expected) {
        Err(WeightsError::NotFinite { key, first, bad, .. }) => assert_eq!((key.as_str(), first, bad), ("a.weight", 2, 1)),
        other => panic!("expected NotFinite, got {other:?}"),
    }

    // A missing file names its path.
    let e = Checkpoint::open(dir.join("absent.safetensors")).unwrap_err();
    assert!(e.to_string().contains("absent.safetensors"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sharded_index_loads_every_shard() {
    let dir = std::env::temp_dir().join(format!("videossm-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_st(&dir.join("m-1.safetensors"), &[("a", vec![2], vec![1.0, 2.0])]);
    write_st(&dir.join("m-2.safetensors"), &[("b", vec![1], vec![3.0])]);
    std::fs::write(dir.join("m.safetensors.index.json"), r#"{"weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}}"#).unwrap();
    let ck = Checkpoint::open(dir.join("m.safetensors.index.json")).unwrap();
    assert_eq!(ck.get("a").unwrap().to_f32(), vec![1.0, 2.0]);
    assert_eq!(ck.get("b").unwrap().to_f32(), vec![3.0]);
    std::fs::write(dir.join("bad.safetensors.index.json"), r#"{"weight_map": {"a": "../etc/passwd"}}"#).unwrap();
    assert!(Checkpoint::open(dir.join("bad.safetensors.index.json")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_configs_name_the_field() {
    let dir = std::env::temp_dir().join(format!("videossm-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(parity("dit-small").join("config.json")).unwrap()).unwrap();
    json["num_heads"] = 5.into();
    let p = dir.join("config.json");
    std::fs::write(&p, json.to_string()).unwrap();
    let e = DitConfig::load(&p).unwrap_err().to_string();
    assert!(e.contains("num_heads 5") && e.contains("config.json"), "{e}");
    json["num_heads"] = 4.into();
    json.as_object_mut().unwrap().remove("dim");
    std::fs::write(&p, json.to_string()).unwrap();
    let e = DitConfig::load(&p).unwrap_err().to_string();
    assert!(e.contains("dim"), "{e}");
    std::fs::write(&p, r#"{"denoising_step_list": [1000, 0]}"#).unwrap();
    let e = GenerationConfig::load(&p).unwrap_err().to_string();
    assert!(e.contains("denoising step 0"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
