//! Writing checkpoints tensor by tensor, so that a model of any size is written with
//! one tensor's worth of host memory at most: a `.safetensors` file (its header comes
//! first, every offset known from the shapes) and a PyTorch zip checkpoint in
//! `torch.save`'s layout (stored entries, data aligned to 64 bytes, ZIP64 for files
//! past 4 GiB, a protocol-2 pickle of `_rebuild_tensor_v2` calls), which `torch.load`
//! and [`crate::Checkpoint::open`] read.
use crate::error::{io, Result, WeightsError};
use crate::tensor::DType;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// One tensor to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub key: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl Spec {
    pub fn new(key: impl Into<String>, dtype: DType, shape: &[usize]) -> Spec {
        Spec { key: key.into(), dtype, shape: shape.to_vec() }
    }

    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&n| n as u64).product()
    }

    pub fn bytes(&self) -> u64 {
        self.numel() * self.dtype.size() as u64
    }
}

/// Writes a tensor's little-endian bytes, exactly [`Spec::bytes`] of them.
pub type Fill<'a> = dyn FnMut(&Spec, &mut dyn Write) -> std::io::Result<()> + 'a;

/// Counts and checksums what passes through (zip entries carry a CRC-32).
struct Tally<'a> {
    out: &'a mut dyn Write,
    bytes: u64,
    crc: u32,
}

impl Write for Tally<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        self.crc = crc32(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// CRC-32 (IEEE, reflected) continued over `data`.
fn crc32(crc: u32, data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            *e = (0..8).fold(i as u32, |c, _| if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 });
        }
        t
    });
    !data.iter().fold(!crc, |c, &b| table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

/// Runs `fill` for `spec` into `out`, checking it wrote exactly the tensor's bytes.
fn fill_one(path: &Path, spec: &Spec, out: &mut dyn Write, fill: &mut Fill) -> Result<u32> {
    let mut t = Tally { out, bytes: 0, crc: 0 };
    fill(spec, &mut t).map_err(io(path))?;
    if t.bytes != spec.bytes() {
        return Err(WeightsError::Format {
            path: path.into(),
            message: format!("tensor {} {:?}: {} bytes written, expected {}", spec.key, spec.shape, t.bytes, spec.bytes()),
        });
    }
    Ok(t.crc)
}

/// A `.safetensors` file of `specs` (in that order), each tensor's bytes from `fill`.
pub fn safetensors(path: &Path, specs: &[Spec], fill: &mut Fill) -> Result<()> {
    let mut header = serde_json::Map::new();
    let mut at = 0u64;
    for s in specs {
        let entry = serde_json::json!({ "dtype": s.dtype.safetensors_name(), "shape": s.shape, "data_offsets": [at, at + s.bytes()] });
        header.insert(s.key.clone(), entry);
        at += s.bytes();
    }
    let mut text = serde_json::Value::Object(header).to_string().into_bytes();
    // Pad with spaces so the data section starts 8-byte aligned, as the format recommends.
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut f = BufWriter::new(File::create(path).map_err(io(path))?);
    f.write_all(&(text.len() as u64).to_le_bytes()).and_then(|_| f.write_all(&text)).map_err(io(path))?;
    for s in specs {
        fill_one(path, s, &mut f, fill)?;
    }
    f.flush().map_err(io(path))
}

/// A zip entry's name, CRC, size and local header offset, for the central directory.
struct Entry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

/// Data of each entry starts at a multiple of this (torch.save's alignment, so readers can map it).
const ALIGN: u64 = 64;

struct Zip<'a> {
    path: &'a Path,
    f: BufWriter<File>,
    at: u64,
    entries: Vec<Entry>,
}

impl Zip<'_> {
    /// A local header for `name` with `size` bytes of data padded to [`ALIGN`]; the CRC is patched in later.
    fn header(&mut self, name: &str, size: u64) -> std::io::Result<u64> {
        let fixed = 30 + name.len() as u64 + 4;
        let pad = (ALIGN - (self.at + fixed) % ALIGN) % ALIGN;
        let mut h = Vec::with_capacity(fixed as usize + pad as usize);
        h.extend_from_slice(b"PK\x03\x04");
        h.extend_from_slice(&45u16.to_le_bytes()); // version needed: ZIP64
        h.extend_from_slice(&[0; 8]); // flags, method (stored), time, date
        h.extend_from_slice(&0u32.to_le_bytes()); // CRC, patched after the data
        let size32 = u32::try_from(size).map_err(|_| std::io::Error::other(format!("entry {name} is over 4 GiB")))?;
        h.extend_from_slice(&size32.to_le_bytes());
        h.extend_from_slice(&size32.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&(4 + pad as u16).to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        h.extend_from_slice(b"FB"); // the padding field torch.save writes
        h.extend_from_slice(&(pad as u16).to_le_bytes());
        h.resize(h.len() + pad as usize, b'Z');
        self.f.write_all(&h)?;
        let offset = self.at;
        self.at += h.len() as u64;
        Ok(offset)
    }

    fn entry(&mut self, name: String, size: u64, write: impl FnOnce(&mut dyn Write) -> Result<u32>) -> Result<()> {
        let offset = self.header(&name, size).map_err(io(self.path))?;
        let crc = write(&mut self.f)?;
        self.at += size;
        self.entries.push(Entry { name, crc, size, offset });
        Ok(())
    }

    /// Patches every CRC, then writes the central directory and the ZIP64 end records.
    fn finish(mut self) -> std::io::Result<()> {
        for e in &self.entries {
            self.f.seek(SeekFrom::Start(e.offset + 14))?;
            self.f.write_all(&e.crc.to_le_bytes())?;
        }
        self.f.seek(SeekFrom::Start(self.at))?;
        let start = self.at;
        let mut cd = Vec::new();
        for e in &self.entries {
            cd.extend_from_slice(b"PK\x01\x02");
            cd.extend_from_slice(&45u16.to_le_bytes()); // made by
            cd.extend_from_slice(&45u16.to_le_bytes()); // needed
            cd.extend_from_slice(&[0; 8]);
            cd.extend_from_slice(&e.crc.to_le_bytes());
            cd.extend_from_slice(&[0xff; 8]); // sizes: in the ZIP64 field
            cd.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&28u16.to_le_bytes()); // extra: the ZIP64 field
            cd.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
            cd.extend_from_slice(&[0xff; 4]); // offset: in the ZIP64 field
            cd.extend_from_slice(e.name.as_bytes());
            cd.extend_from_slice(&1u16.to_le_bytes());
            cd.extend_from_slice(&24u16.to_le_bytes());
            for v in [e.size, e.size, e.offset] {
                cd.extend_from_slice(&v.to_le_bytes());
            }
        }
        let n = self.entries.len() as u64;
        let end64 = start + cd.len() as u64;
        cd.extend_from_slice(b"PK\x06\x06");
        cd.extend_from_slice(&44u64.to_le_bytes());
        cd.extend_from_slice(&45u16.to_le_bytes());
        cd.extend_from_slice(&45u16.to_le_bytes());
        cd.extend_from_slice(&[0; 8]); // this disk, the directory's disk
        for v in [n, n, end64 - start, start] {
            cd.extend_from_slice(&v.to_le_bytes());
        }
        cd.extend_from_slice(b"PK\x06\x07");
        cd.extend_from_slice(&0u32.to_le_bytes());
        cd.extend_from_slice(&end64.to_le_bytes());
        cd.extend_from_slice(&1u32.to_le_bytes());
        cd.extend_from_slice(b"PK\x05\x06");
        cd.extend_from_slice(&[0; 4]);
        cd.extend_from_slice(&[0xff; 16]); // counts, size and offset: in the ZIP64 record
        cd.extend_from_slice(&[0; 2]);
        self.f.write_all(&cd)?;
        self.f.flush()
    }
}

/// Protocol-2 pickle opcodes of the state dict below.
mod op {
    pub const PROTO: u8 = 0x80;
    pub const EMPTY_DICT: u8 = b'}';
    pub const MARK: u8 = b'(';
    pub const BINUNICODE: u8 = b'X';
    pub const GLOBAL: u8 = b'c';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const BINPERSID: u8 = b'Q';
    pub const LONG1: u8 = 0x8a;
    pub const FALSE: u8 = 0x89;
    pub const REDUCE: u8 = b'R';
    pub const SETITEMS: u8 = b'u';
    pub const SETITEM: u8 = b's';
    pub const STOP: u8 = b'.';
}

fn str_op(p: &mut Vec<u8>, s: &str) {
    p.push(op::BINUNICODE);
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

fn int_op(p: &mut Vec<u8>, v: u64) {
    // LONG1: little-endian two's complement, one spare byte so it never reads as negative.
    let bytes = v.to_le_bytes();
    let n = 8 - (v.leading_zeros() / 8) as usize + 1;
    p.extend_from_slice(&[op::LONG1, n as u8]);
    p.extend_from_slice(&bytes[..n.min(8)]);
    p.resize(p.len() + n.saturating_sub(8), 0);
}

fn ints_op(p: &mut Vec<u8>, vs: impl IntoIterator<Item = u64>) {
    p.push(op::MARK);
    vs.into_iter().for_each(|v| int_op(p, v));
    p.push(op::TUPLE);
}

/// `{key: tensor}` (inside `{wrapper: …}` if given), storage `i` holding `specs[i]`.
fn state_dict_pickle(wrapper: Option<&str>, specs: &[Spec]) -> Vec<u8> {
    let mut p = vec![op::PROTO, 2];
    if let Some(w) = wrapper {
        p.push(op::EMPTY_DICT);
        str_op(&mut p, w);
    }
    p.extend_from_slice(&[op::EMPTY_DICT, op::MARK]);
    for (i, s) in specs.iter().enumerate() {
        str_op(&mut p, &s.key);
        p.push(op::GLOBAL);
        p.extend_from_slice(b"torch._utils\n_rebuild_tensor_v2\n");
        p.push(op::MARK);
        p.push(op::MARK);
        str_op(&mut p, "storage");
        p.push(op::GLOBAL);
        p.extend_from_slice(format!("torch\n{}\n", s.dtype.torch_storage()).as_bytes());
        str_op(&mut p, &i.to_string());
        str_op(&mut p, "cpu");
        int_op(&mut p, s.numel());
        p.extend_from_slice(&[op::TUPLE, op::BINPERSID]);
        int_op(&mut p, 0);
        ints_op(&mut p, s.shape.iter().map(|&n| n as u64));
        // Contiguous (row-major) strides.
        let mut strides: Vec<u64> = s.shape.iter().rev().scan(1u64, |acc, &n| Some(std::mem::replace(acc, *acc * n as u64))).collect();
        strides.reverse();
        ints_op(&mut p, strides);
        p.push(op::FALSE);
        p.push(op::GLOBAL);
        p.extend_from_slice(b"collections\nOrderedDict\n");
        p.extend_from_slice(&[op::EMPTY_TUPLE, op::REDUCE, op::TUPLE, op::REDUCE]);
    }
    p.push(op::SETITEMS);
    if wrapper.is_some() {
        p.push(op::SETITEM);
    }
    p.push(op::STOP);
    p
}

/// A PyTorch zip checkpoint of `specs` as `torch.save(state_dict)` writes it, or of
/// `{wrapper: state_dict}` (a training checkpoint's `generator`); the archive's folder
/// is named after the file, as torch.save names it.
pub fn torch(path: &Path, wrapper: Option<&str>, specs: &[Spec], fill: &mut Fill) -> Result<()> {
    let root = path.file_stem().and_then(|s| s.to_str()).filter(|s| !s.is_empty()).unwrap_or("archive").to_string();
    let file = File::create(path).map_err(io(path))?;
    let mut z = Zip { path, f: BufWriter::new(file), at: 0, entries: Vec::new() };
    let small = |bytes: Vec<u8>| {
        move |out: &mut dyn Write| -> Result<u32> {
            out.write_all(&bytes).map_err(io(path))?;
            Ok(crc32(0, &bytes))
        }
    };
    let pickle = state_dict_pickle(wrapper, specs);
    z.entry(format!("{root}/data.pkl"), pickle.len() as u64, small(pickle))?;
    z.entry(format!("{root}/byteorder"), 6, small(b"little".to_vec()))?;
    for (i, s) in specs.iter().enumerate() {
        z.entry(format!("{root}/data/{i}"), s.bytes(), |out| fill_one(path, s, out, fill))?;
    }
    z.entry(format!("{root}/version"), 2, small(b"3\n".to_vec()))?;
    z.finish().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_the_standard_check_string() {
        // The catalogued check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(0, b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xcbf4_3926);
    }

    #[test]
    fn ints_are_non_negative_little_endian() {
        for v in [0u64, 1, 127, 128, 255, 256, 65_535, 1 << 31, (1 << 32) + 5, u64::MAX >> 1, u64::MAX] {
            let mut p = Vec::new();
            int_op(&mut p, v);
            let (n, bytes) = (p[1] as usize, &p[2..]);
            assert_eq!(bytes.len(), n);
            assert!(bytes[n - 1] < 0x80, "{v} would read as negative");
            assert_eq!(bytes.iter().rev().fold(0u128, |a, &b| a << 8 | b as u128), v as u128);
        }
    }
}
