//! Hostile snapshot and prompt files: every one is an error, never a panic.
use super::support::*;
use std::collections::HashMap;
use std::path::Path;
use videossm::prompts::Schedule;
use videossm::synthetic::Rng;
use videossm::{Pipeline, PipelineOptions, Session};

/// `src` rewritten with metadata `key` set to `value`.
fn with_meta(src: &Path, dst: &Path, key: &str, value: &str) {
    let bytes = std::fs::read(src).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta: HashMap<String, String> = header.metadata().clone().unwrap();
    meta.insert(key.into(), value.into());
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
    safetensors::tensor::serialize_to_file(tensors, Some(meta), dst).unwrap();
}

#[test]
fn tampered_snapshots_are_errors() {
    let p = Pipeline::load(model_dir(), &PipelineOptions::default()).unwrap();
    let dir = scratch("hostile-snapshot");
    let good = dir.join("good.safetensors");
    let mut s = Session::new(&p, "a red ball", 1).unwrap();
    for _ in 0..4 {
        s.next_frames().unwrap();
    }
    videossm::snapshot::save_session(&good, &s.snapshot().unwrap()).unwrap();
    let max = u64::MAX.to_string();
    let cases: &[(&str, &str)] = &[
        ("tokens_written", &max),
        ("tokens_written", "1"),
        ("frame0", &max),
        ("frame0", "100000000"),
        ("chunk", &max),
        ("history", "0:0,1:1,2:2,3:3,4:4"),
        ("history", &format!("{max}:0")),
        ("history", "0:x"),
        ("capacity", "0"),
        ("capacity", &max),
        ("shape", "0,0,0,0"),
        ("shape", "3,16,4"),
        ("rng", "-1"),
        ("context_t", "NaN"),
        ("format", "videossm-snapshot-0"),
    ];
    let bad = dir.join("bad.safetensors");
    for (key, value) in cases {
        with_meta(&good, &bad, key, value);
        // Loading or restoring fails, or the session refuses its next chunk: never a panic.
        if let Ok(state) = videossm::snapshot::load_session(&bad) {
            if let Ok(mut s) = Session::restore(&p, &state) {
                let _ = s.next_frames();
            }
        }
    }
    // Random byte flips anywhere in the file.
    let bytes = std::fs::read(&good).unwrap();
    let mut rng = Rng::new(5);
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..rng.range(1, 8) {
            let i = rng.range(0, b.len() - 1);
            b[i] = rng.next_u64() as u8;
        }
        b.truncate(rng.range(0, b.len()).max(b.len() / 2));
        std::fs::write(&bad, &b).unwrap();
        let _ = videossm::snapshot::load_session(&bad);
    }
}

#[test]
fn random_prompt_files_are_errors_or_schedules() {
    let valid = "# story\n0s: a cat sits\n12s: the cat jumps\n1m30s: the cat sleeps\n";
    let mut rng = Rng::new(9);
    let alphabet = b"0123456789.:hms# \nabc\xff";
    for _ in 0..5000 {
        let mut b = valid.as_bytes().to_vec();
        for _ in 0..rng.range(1, 6) {
            let i = rng.range(0, b.len() - 1);
            b[i] = alphabet[rng.range(0, alphabet.len() - 1)];
        }
        if let Ok(text) = std::str::from_utf8(&b) {
            if let Ok(s) = Schedule::parse(text, Path::new("fuzz.txt")) {
                assert!(s.cues.windows(2).all(|w| w[0].seconds < w[1].seconds));
                let _ = s.per_chunk(16.0, |f| videossm::generate::chunk_of_frame(f, 3));
            }
        }
    }
}
