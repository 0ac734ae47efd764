//! The fuzz targets' bodies (`fuzz/`, run with `cargo +nightly fuzz`), here so the
//! stable test suite replays every seed and every input a fuzz run found
//! (`weights/tests/fuzz_inputs.rs`) through exactly the code the fuzzer ran.
//! Each takes arbitrary bytes and must return without panicking.
use crate::{prompts::Schedule, Checkpoint, DitConfig, GenerationConfig, T5Config, VaeConfig};
use std::path::PathBuf;

/// A target: arbitrary bytes in, no panic.
pub type Target = fn(&[u8]);

/// The targets by name, as `cargo fuzz list` shows them.
pub const TARGETS: [(&str, Target); 6] =
    [("safetensors", safetensors), ("pth", pth), ("pickle", pickle), ("config", config), ("prompts", prompts), ("snapshot", snapshot)];

/// A `.safetensors` checkpoint: header length, JSON header, dtypes, shapes, offsets.
pub fn safetensors(data: &[u8]) {
    let path = scratch_file("model.safetensors", data);
    if let Ok(c) = Checkpoint::open(&path) {
        // Every tensor read must hold exactly its shape's bytes.
        for v in c.views() {
            let numel: usize = v.shape.iter().product();
            assert_eq!(v.bytes.len(), numel * v.dtype.size(), "{}", v.name);
        }
    }
}

/// A whole PyTorch `.pt/.pth` file: the zip directory (ZIP64 included), data.pkl, storages.
pub fn pth(data: &[u8]) {
    let _ = Checkpoint::open(scratch_file("model.pt", data));
}

/// The restricted unpickler: `data` is the `data.pkl` of a well-formed archive with two
/// storages, so mutations explore the pickle rather than the zip framing.
pub fn pickle(data: &[u8]) {
    let (storage0, storage1) = ([0u8; 64], [1u8; 6]);
    let zip = stored_zip(&[("archive/data.pkl", data), ("archive/data/0", &storage0), ("archive/data/1", &storage1)]);
    let _ = Checkpoint::open(scratch_file("pickle.pt", &zip));
}

/// Model and generation configs: the first byte picks the kind, the rest is the JSON.
/// A config that validates must also give its derived tables.
pub fn config(data: &[u8]) {
    let Some((&kind, json)) = data.split_first() else { return };
    let path = scratch_file("config.json", json);
    match kind % 4 {
        0 => {
            if let Ok(c) = DitConfig::load(&path) {
                let _ = (c.head_dim(), c.expected_tensors(true));
            }
        }
        1 => {
            if let Ok(c) = GenerationConfig::load(&path) {
                let _ = c.schedule();
            }
        }
        2 => {
            if let Ok(c) = T5Config::load(&path) {
                let _ = c.expected_tensors();
            }
        }
        _ => {
            if let Ok(c) = VaeConfig::load(&path) {
                let _ = (c.decoder_dims(), c.decoder_upsamples(), c.expected_tensors());
            }
        }
    }
}

/// Prompt schedule files: a schedule that parses has strictly increasing times.
pub fn prompts(data: &[u8]) {
    if let Ok(s) = Schedule::load(&scratch_file("prompts.txt", data)) {
        assert!(s.cues.windows(2).all(|w| w[0].seconds < w[1].seconds));
        // 16 fps, chunks of 3 latent frames (9 video frames in the first chunk, 12 after).
        let _ = s.per_chunk(16.0, |f| (f + 3) / 12);
    }
}

/// Session snapshots: the safetensors container, the metadata fields, then the checks a
/// restore makes before touching the device, against the model of the seeds
/// (`fuzz/seeds.py`: chunks of 3 latent frames of 4 tokens, one block, one VAE conv cache).
pub fn snapshot(data: &[u8]) {
    let Ok(state) = crate::snapshot::load_session(&scratch_file("state.safetensors", data)) else { return };
    if state.check_position(3, 4).is_err() {
        return;
    }
    let rows = state.capacity * 4;
    let shapes = [("blocks.0.cache_k", [rows, 8]), ("blocks.0.cache_v", [rows, 8]), ("blocks.0.ctx_k", [2, 8]), ("blocks.0.ctx_v", [2, 8])];
    let _ = state.generator.check_tensors(shapes.iter().map(|(n, s)| (*n, &s[..])));
    if let Some(caches) = &state.decoder {
        let _ = crate::snapshot::check_tensors("VAE cache", caches, [("decoder.conv1.cache", &[2, 8, 8, 4][..])].into_iter());
    }
}

/// The readers take paths (they check sizes against the file before reading), so each
/// input is written to this process's scratch folder first (in memory where possible).
fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let dir = base.join(format!("videossm-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join(name);
    std::fs::write(&path, data).expect("scratch file");
    path
}

/// A stored (uncompressed) zip archive of `entries`, laid out as `torch.save` writes it.
fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let (mut out, mut directory) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = 0u32; // the reader trusts no checksum, so none is computed
        let fixed = |sig: &[u8; 4], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend(20u16.to_le_bytes()); // version made by
            }
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend([0u8; 4]); // flags, method 0 (stored)
            h.extend([0u8; 4]); // time, date
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend([0u8; 8]); // comment, disk, internal attributes
                h.extend([0u8; 4]); // external attributes
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(fixed(b"PK\x03\x04", false));
        out.extend_from_slice(data);
        directory.extend(fixed(b"PK\x01\x02", true));
    }
    let (cd_off, count) = (out.len() as u32, entries.len() as u16);
    out.extend(&directory);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend((directory.len() as u32).to_le_bytes());
    out.extend(cd_off.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}
