//! Shared test helpers: parity bundle paths, scratch folders, safetensors writing,
//! and hand-assembled PyTorch zips (stored entries + pickle bytes).
#![allow(dead_code)]
use std::path::{Path, PathBuf};

/// A bundle of `../shared/parity` beside the checkout (or under `VIDEOSSM_PARITY`).
pub fn parity(name: &str) -> PathBuf {
    let root = std::env::var_os("VIDEOSSM_PARITY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/parity")));
    let dir = root.join(name);
    assert!(
        dir.is_dir(),
        "parity bundle {} is missing: the project's shared/ folder must sit beside the checkout (or set VIDEOSSM_PARITY)",
        dir.display()
    );
    dir
}

/// A fresh scratch folder per test, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("videossm-weights-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn write_st(path: &Path, tensors: &[(&str, Vec<usize>, safetensors::Dtype, Vec<u8>)]) {
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        tensors.iter().map(|(k, s, d, b)| (k.to_string(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::tensor::serialize_to_file(views, None, path).unwrap();
}

pub fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored zip archive as `torch.save` lays it out (CRCs left zero: the reader
/// trusts sizes from the central directory only and never checks them).
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let (mut out, mut dir) = (Vec::new(), Vec::new());
    for (name, data) in entries {
        let local = out.len() as u32;
        out.extend(b"PK\x03\x04");
        out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(*data);
        dir.extend(b"PK\x01\x02");
        dir.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        dir.extend((data.len() as u32).to_le_bytes());
        dir.extend((data.len() as u32).to_le_bytes());
        dir.extend((name.len() as u16).to_le_bytes());
        dir.extend([0u8; 12]);
        dir.extend(local.to_le_bytes());
        dir.extend(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend(&dir);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((dir.len() as u32).to_le_bytes());
    out.extend(cd_off.to_le_bytes());
    out.extend([0u8; 2]);
    out
}

/// Pickle opcodes, protocol 2, as CPython's pickler writes a state dict.
pub struct Pickle(pub Vec<u8>);

impl Pickle {
    pub fn new() -> Pickle {
        Pickle(vec![0x80, 2])
    }
    pub fn op(mut self, bytes: &[u8]) -> Pickle {
        self.0.extend(bytes);
        self
    }
    pub fn str(mut self, s: &str) -> Pickle {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.as_bytes());
        self
    }
    pub fn int(mut self, v: i32) -> Pickle {
        self.0.push(b'J');
        self.0.extend(v.to_le_bytes());
        self
    }
    pub fn global(mut self, module: &str, name: &str) -> Pickle {
        self.0.extend(format!("c{module}\n{name}\n").as_bytes());
        self
    }
    pub fn ints(self, v: &[i32]) -> Pickle {
        v.iter().fold(self.op(b"("), |p, &x| p.int(x)).op(b"t")
    }
    /// `_rebuild_tensor_v2(('storage', torch.<ty>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())`
    pub fn tensor(self, ty: &str, key: &str, numel: i32, offset: i32, size: &[i32], stride: &[i32]) -> Pickle {
        let p = self
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b"(")
            .op(b"(")
            .str("storage")
            .global("torch", ty)
            .str(key)
            .str("cpu")
            .int(numel)
            .op(b"tQ");
        p.int(offset).ints(size).ints(stride).op(&[0x89]).global("collections", "OrderedDict").op(b")R").op(b"tR")
    }
    pub fn stop(self) -> Vec<u8> {
        self.op(b".").0
    }
}
