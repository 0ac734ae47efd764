//! The library API: sessions, prompt switches and snapshot/resume equality.
use super::support::*;
use videossm::{Frame, Pipeline, PipelineOptions, Session, SessionState};

fn pipeline() -> Pipeline {
    Pipeline::load(model_dir(), &PipelineOptions::default()).expect("loading the test model")
}

/// The test model with the gated delta memory (MEMORY.md B.6).
fn pipeline_gated_delta() -> Pipeline {
    Pipeline::load(model_dir_gated_delta(), &PipelineOptions::default()).expect("loading the gated delta test model")
}

fn latents(s: &mut Session, chunks: usize) -> Vec<Vec<f32>> {
    (0..chunks).map(|_| s.next_frames().unwrap().latents).collect()
}

#[test]
fn chunks_have_the_vae_frame_counts() {
    let p = pipeline();
    let mut s = Session::new(&p, "a red ball", 5).unwrap();
    let sizes: Vec<(usize, usize, usize)> = (0..3)
        .map(|_| {
            let c = s.next_frames().unwrap();
            assert!(c.frames.iter().all(|f| f.width == 32 && f.height == 32 && f.rgb.len() == 32 * 32 * 3));
            (c.index, c.frames.len(), c.latents.len())
        })
        .collect();
    assert_eq!(sizes, [(0, 9, 3 * 16 * 16), (1, 12, 768), (2, 12, 768)]);
}

#[test]
fn same_seed_same_video_other_seed_other_video() {
    let p = pipeline();
    let a = latents(&mut Session::new(&p, "a red ball", 5).unwrap(), 2);
    let b = latents(&mut Session::new(&p, "a red ball", 5).unwrap(), 2);
    let c = latents(&mut Session::new(&p, "a red ball", 6).unwrap(), 2);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// Latents and decoded frames of the next `chunks` chunks.
fn video(s: &mut Session, chunks: usize) -> Vec<(Vec<f32>, Vec<Frame>)> {
    (0..chunks).map(|_| s.next_frames().map(|c| (c.latents, c.frames)).unwrap()).collect()
}

/// N chunks straight = k chunks, snapshot to a file, restore in a new session, N − k chunks:
/// the same latents and the same pixels bit for bit (the VAE caches are in the snapshot),
/// with the window evicting (6 chunks of 3 frames, window 9), for both memory forms
/// (B.6's router reads the frame index the snapshot carries).
#[test]
fn snapshot_resume_continues_the_same_video() {
    let p = pipeline_gated_delta();
    assert_eq!(p.memory(), Some(weights::MemoryType::GatedDelta));
    snapshot_resume(&p);
    snapshot_resume(&pipeline());
}

fn snapshot_resume(p: &Pipeline) {
    let straight = video(&mut Session::new(p, "a red ball", 9).unwrap(), 6);
    let mut first = Session::new(p, "a red ball", 9).unwrap();
    let mut resumed = video(&mut first, 4);
    let file = scratch(&format!("snapshot-{}", p.memory().map_or("off", |m| m.name()))).join("state.safetensors");
    videossm::snapshot::save_session(&file, &first.snapshot().unwrap()).unwrap();
    let latents_only = first.snapshot_latents().unwrap();
    drop(first);
    let state = videossm::snapshot::load_session(&file).unwrap();
    assert_eq!((state.chunk, state.seed, state.prompt.as_str()), (4, 9, "a red ball"));
    assert!(state.decoder.as_ref().is_some_and(|c| !c.is_empty()));
    let mut second = Session::restore(p, &state).unwrap();
    resumed.extend(video(&mut second, 2));
    assert!(straight == resumed, "the resumed video differs from the straight one");
    // Without the VAE caches (a state kept through a device fault): the same latents.
    let mut warm = Session::restore(p, &latents_only).unwrap();
    let again = video(&mut warm, 2);
    assert!(again.iter().zip(&straight[4..]).all(|(a, b)| a.0 == b.0), "latents-only resume changed the latents");
}

/// A video cut inside a chunk loses no frame across a snapshot: the undelivered frames
/// are held by the session, carried by the snapshot file and delivered first after a
/// restore, so frames 0..n of the straight video = the first session's + the restored one's.
#[test]
fn held_frames_cross_a_snapshot() {
    let p = pipeline();
    let straight: Vec<Frame> = video(&mut Session::new(&p, "a red ball", 4).unwrap(), 3).into_iter().flat_map(|c| c.1).collect();
    let mut first = Session::new(&p, "a red ball", 4).unwrap();
    let mut got = first.next_frames().unwrap().frames;
    let mut chunk = first.next_frames().unwrap().frames;
    first.hold(chunk.split_off(5));
    got.extend(chunk);
    assert_eq!((got.len(), first.held()), (14, 7));
    let file = scratch("held").join("state.safetensors");
    videossm::snapshot::save_session(&file, &first.snapshot().unwrap()).unwrap();
    let state = videossm::snapshot::load_session(&file).unwrap();
    assert_eq!(state.held.count(), 7);
    let mut second = Session::restore(&p, &state).unwrap();
    assert_eq!(second.held(), 7);
    let next = second.next_frames().unwrap();
    assert_eq!((next.index, next.frames.len()), (2, 19));
    got.extend(next.frames);
    assert!(got == straight, "frames were lost or changed at the seam");
    // Held frames of another size are refused, naming the sizes.
    let mut bad = state.clone();
    bad.held.width = 16;
    bad.held.rgb.truncate(7 * 16 * 32 * 3);
    let e = Session::restore(&p, &bad).err().expect("held frames of another size restored").to_string();
    assert!(e.contains("held frames of 16x32") && e.contains("32x32"), "{e}");
}

/// VAE caches of another size or model are refused, naming the cache and both shapes.
#[test]
fn vae_caches_of_another_model_are_refused() {
    let p = pipeline();
    let mut s = Session::new(&p, "a red ball", 2).unwrap();
    s.next_frames().unwrap();
    let good = s.snapshot().unwrap();
    let restore = |state: &SessionState| Session::restore(&p, state).err().expect("a mismatched snapshot restored").to_string();
    let mut state = good.clone();
    let (name, shape, data) = &mut state.decoder.as_mut().unwrap()[0];
    let mine = shape.clone();
    shape[1] *= 2;
    data.resize(shape.iter().product(), 0.0);
    let (name, theirs) = (name.clone(), shape.clone());
    let e = restore(&state);
    assert!(e.contains(&name) && e.contains(&format!("{theirs:?}")) && e.contains(&format!("{mine:?}")), "{e}");
    let mut state = good.clone();
    let (last, _, _) = state.decoder.as_mut().unwrap().pop().unwrap();
    let e = restore(&state);
    assert!(e.contains("snapshot has no VAE cache") && e.contains(&last), "{e}");
    let mut state = good;
    state.decoder.as_mut().unwrap().push(("decoder.extra.cache".into(), vec![1], vec![0.0]));
    let e = restore(&state);
    assert!(e.contains("decoder.extra.cache [1] is not in this model"), "{e}");
}

/// A prompt switch changes the chunks after it, not the ones before, and is itself
/// part of the snapshot.
#[test]
fn prompt_switch_applies_from_the_next_chunk() {
    let p = pipeline();
    let plain = latents(&mut Session::new(&p, "a red ball", 3).unwrap(), 4);
    let mut s = Session::new(&p, "a red ball", 3).unwrap();
    let mut switched = latents(&mut s, 2);
    s.set_prompt("a blue cube").unwrap();
    assert_eq!(s.prompt(), "a blue cube");
    let state = s.snapshot().unwrap();
    switched.extend(latents(&mut s, 2));
    assert_eq!(switched[..2], plain[..2]);
    assert_ne!(switched[2], plain[2]);
    let mut again = Session::restore(&p, &state).unwrap();
    assert_eq!(again.prompt(), "a blue cube");
    assert_eq!(latents(&mut again, 2), switched[2..]);
}

#[test]
fn library_errors_name_the_problem() {
    let p = pipeline();
    let e = Session::new(&p, "  ", 0).err().unwrap().to_string();
    assert!(e.contains("prompt") && e.contains("empty"), "{e}");
    let opts = PipelineOptions { window: Some(4), ..PipelineOptions::default() };
    let e = Pipeline::load(model_dir(), &opts).err().unwrap().to_string();
    assert!(e.contains("window") && e.contains("at least 6"), "{e}");
    let e = Pipeline::load(&scratch("empty"), &PipelineOptions::default()).err().unwrap().to_string();
    assert!(e.contains("config.json"), "{e}");
}

/// A folder in the official layout (Wan's config.json without the WanModel defaults,
/// `diffusion_pytorch_model.safetensors`), and a generator checkpoint whose state dict
/// sits under `generator_ema.model.` as in Self-Forcing's `.pt`.
#[test]
fn official_layout_and_generator_checkpoint() {
    let dir = scratch("official");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(model_dir().join("config.json")).unwrap()).unwrap();
    let text_dim = cfg["text_dim"].clone();
    let obj = cfg.as_object_mut().unwrap();
    obj.remove("patch_size");
    obj.remove("window_size");
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(model_dir().join("generation.json"), dir.join("generation.json")).unwrap();
    std::fs::copy(model_dir().join("model.safetensors"), dir.join("diffusion_pytorch_model.safetensors")).unwrap();
    // The small VAE and umT5 have their own settings; Wan's published ones are checked below.
    for f in ["vae.safetensors", "vae_config.json", "t5.safetensors", "t5_config.json", "tokenizer.json"] {
        std::fs::copy(model_dir().join(f), dir.join(f)).unwrap();
    }
    let p = Pipeline::load(&dir, &PipelineOptions::default()).unwrap();
    assert_eq!((p.config.patch_size, serde_json::json!(p.config.text_dim)), ([1, 2, 2], text_dim));
    assert_eq!(p.files.dit, dir.join("diffusion_pytorch_model.safetensors"));
    let reference = latents(&mut Session::new(&p, "a red ball", 1).unwrap(), 1);

    let ck = weights::Checkpoint::open(model_dir().join("model.safetensors")).unwrap();
    let nested: Vec<(String, safetensors::tensor::TensorView)> = ck
        .tensors
        .iter()
        .map(|(k, t)| {
            (
                format!("generator_ema.model.{k}"),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), &t.data).unwrap(),
            )
        })
        .collect();
    let generator = dir.join("generator.safetensors");
    safetensors::tensor::serialize_to_file(nested, None, &generator).unwrap();
    std::fs::remove_file(dir.join("diffusion_pytorch_model.safetensors")).unwrap();
    let opts = PipelineOptions { generator: Some(generator), ..PipelineOptions::default() };
    let p = Pipeline::load(&dir, &opts).unwrap();
    assert_eq!(latents(&mut Session::new(&p, "a red ball", 1).unwrap(), 1), reference);
    // Official layout: the encoder and VAE settings default to Wan2.1's published ones.
    let files = videossm::generate::ModelFiles { t5_config: None, ..p.files.clone() };
    let t5 = files.t5_config().unwrap();
    assert_eq!((t5.vocab, t5.dim, t5.num_layers, t5.shared_pos), (256384, 4096, 24, false));
    let files = videossm::generate::ModelFiles { vae_config: None, ..p.files.clone() };
    let vae = files.vae_config().unwrap();
    assert_eq!((vae.dim, vae.z_dim, vae.latent_std.len()), (96, 16, 16));
}

#[test]
fn an_official_layout_folder_written_tensor_by_tensor_loads_and_generates() {
    // `make-full-size-model`'s writer at the product tests' small size: DiT shards in
    // bf16 with their index, umT5 and VAE as PyTorch zips, the Unigram tokenizer under
    // google/umt5-xxl/, and the generator `.pt` with the memory's keys.
    let mut model = weights::official::Official::full_size(3);
    model.dit = weights::synthetic::small_config();
    (model.dit.dim, model.dit.ffn_dim, model.dit.num_heads, model.dit.num_layers, model.dit.text_len, model.dit.text_dim) =
        (64, 128, 4, 2, 16, 48);
    model.t5 = weights::T5Config { vocab: 600, ..weights::synthetic::small_t5_config(48) };
    model.vae = weights::synthetic::small_vae_config(8, 16);
    let dir = scratch("official-layout");
    let mut files = Vec::new();
    model.write(&dir, &mut |f| files.push(f.to_string())).unwrap();
    assert_eq!(files.len(), 5, "{files:?}");
    let written: u64 = files.iter().map(|f| std::fs::metadata(dir.join(f)).unwrap().len()).sum();
    assert!(written >= model.bytes() && written < model.bytes() + (1 << 20), "{written} bytes on disk for {} of tensors", model.bytes());
    for (file, dtype) in [("models_t5_umt5-xxl-enc-bf16.pth", weights::DType::BF16), ("Wan2.1_VAE.pth", weights::DType::F32)] {
        let ck = weights::Checkpoint::open(dir.join(file)).unwrap();
        assert!(ck.tensors.values().all(|t| t.dtype == dtype), "{file}");
    }
    let generator = dir.join(weights::official::GENERATOR);
    let ck = weights::Checkpoint::open(&generator).unwrap();
    assert_eq!(weights::inspect::locate(&ck), (weights::Kind::DitMemory, "generator.model.".into()));

    let size = Some((32, 32));
    let p = Pipeline::load(&dir, &PipelineOptions { generator: Some(generator), size, ..PipelineOptions::default() }).unwrap();
    assert_eq!(p.files.dit, dir.join(weights::official::GENERATOR));
    assert_eq!(p.memory(), Some(weights::MemoryType::GatedLinear));
    // Without --dtype the weights keep the checkpoint's bf16 on the device.
    assert_eq!(p.dtype, runtime::DType::BF16);
    let out = latents(&mut Session::new(&p, "A red ball, bouncing!", 1).unwrap(), 1);
    assert!(out[0].iter().all(|v| v.is_finite()) && out[0].iter().any(|&v| v != 0.0));
    // Without the generator the folder's own DiT shards load, through their index.
    let p = Pipeline::load(&dir, &PipelineOptions { size, ..PipelineOptions::default() }).unwrap();
    assert_eq!((p.files.dit.file_name().unwrap().to_str(), p.memory()), (Some("diffusion_pytorch_model.safetensors.index.json"), None));
}
