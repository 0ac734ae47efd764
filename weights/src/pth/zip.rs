//! A reader of the uncompressed ("stored") zip archives `torch.save` writes,
//! ZIP64 included (the official umT5 checkpoint is 11 GB). Only the central
//! directory is trusted for sizes; every offset is checked against the file size.
use crate::error::{io, Result, WeightsError};
use crate::limits::MAX_ZIP_ENTRIES;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Entry {
    /// Absolute offset of the entry's data.
    pub offset: u64,
    pub size: u64,
}

pub struct Zip {
    file: File,
    path: PathBuf,
    pub len: u64,
    pub entries: BTreeMap<String, Entry>,
}

fn u16le(b: &[u8], o: usize) -> u64 {
    u16::from_le_bytes([b[o], b[o + 1]]) as u64
}

fn u32le(b: &[u8], o: usize) -> u64 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as u64
}

fn u64le(b: &[u8], o: usize) -> u64 {
    u32le(b, o) | u32le(b, o + 4) << 32
}

impl Zip {
    pub fn open(path: &Path) -> Result<Zip> {
        let file = File::open(path).map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        let mut z = Zip { file, path: path.to_path_buf(), len, entries: BTreeMap::new() };
        // The end-of-central-directory record sits in the last 64 KiB + 22 bytes.
        let tail_len = len.min(65_557);
        let tail = z.read_at(len - tail_len, tail_len)?;
        let eocd = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| tail[i..i + 4] == *b"PK\x05\x06")
            .ok_or_else(|| z.fail("no zip end record (truncated archive?)".into()))?;
        let mut count = u16le(&tail, eocd + 10);
        let mut cd_size = u32le(&tail, eocd + 12);
        let mut cd_off = u32le(&tail, eocd + 16);
        if count == 0xffff || cd_size == 0xffff_ffff || cd_off == 0xffff_ffff {
            // ZIP64: the locator just before the end record points at the real one.
            let loc =
                eocd.checked_sub(20).filter(|&l| tail[l..l + 4] == *b"PK\x06\x07").ok_or_else(|| z.fail("ZIP64 locator missing".into()))?;
            let rec = z.read_at(u64le(&tail, loc + 8), 56)?;
            if rec[..4] != *b"PK\x06\x06" {
                return Err(z.fail("bad ZIP64 end record".into()));
            }
            (count, cd_size, cd_off) = (u64le(&rec, 32), u64le(&rec, 40), u64le(&rec, 48));
        }
        if count > MAX_ZIP_ENTRIES {
            let hint = "torch.save writes a few entries per tensor storage";
            return Err(WeightsError::LimitExceeded {
                path: path.into(),
                what: "zip entries",
                requested: count,
                limit: MAX_ZIP_ENTRIES,
                hint,
            });
        }
        let cd = z.read_at(cd_off, cd_size)?;
        let mut at = 0usize;
        for _ in 0..count {
            if at + 46 > cd.len() || cd[at..at + 4] != *b"PK\x01\x02" {
                return Err(z.fail(format!("truncated central directory at byte {}", cd_off + at as u64)));
            }
            let method = u16le(&cd, at + 10);
            let (mut size, mut local) = (u32le(&cd, at + 20), u32le(&cd, at + 42));
            let (name_len, extra_len, comment_len) =
                (u16le(&cd, at + 28) as usize, u16le(&cd, at + 30) as usize, u16le(&cd, at + 32) as usize);
            let end = at + 46 + name_len + extra_len + comment_len;
            if end > cd.len() {
                return Err(z.fail(format!("truncated central directory at byte {}", cd_off + at as u64)));
            }
            let name = String::from_utf8_lossy(&cd[at + 46..at + 46 + name_len]).into_owned();
            let extra = &cd[at + 46 + name_len..at + 46 + name_len + extra_len];
            if size == 0xffff_ffff || local == 0xffff_ffff {
                (size, local) = zip64_extra(extra, u32le(&cd, at + 24) == 0xffff_ffff, size, local)
                    .map_err(|m| z.fail(format!("entry {name}: {m}")))?;
            }
            if method != 0 {
                return Err(z.fail(format!("entry {name} is compressed (method {method}); torch.save writes stored entries")));
            }
            let header = z.read_at(local, 30)?;
            if header[..4] != *b"PK\x03\x04" {
                return Err(z.fail(format!("entry {name}: no local header at byte {local}")));
            }
            let offset = local + 30 + u16le(&header, 26) + u16le(&header, 28);
            if offset.checked_add(size).is_none_or(|e| e > len) {
                return Err(z.fail(format!("entry {name} ({size} bytes at {offset}) runs past the end of the {len}-byte file")));
            }
            z.entries.insert(name, Entry { offset, size });
            at = end;
        }
        Ok(z)
    }

    fn fail(&self, message: String) -> WeightsError {
        WeightsError::Format { path: self.path.clone(), message }
    }

    /// `size` bytes at `offset`, allocated only once they are known to be in the file.
    pub fn read_at(&mut self, offset: u64, size: u64) -> Result<Vec<u8>> {
        if offset.checked_add(size).is_none_or(|e| e > self.len) {
            return Err(self.fail(format!("{size} bytes at {offset} lie outside the {}-byte file", self.len)));
        }
        let mut buf = vec![0u8; size as usize];
        self.file.seek(SeekFrom::Start(offset)).and_then(|_| self.file.read_exact(&mut buf)).map_err(io(&self.path))?;
        Ok(buf)
    }
}

/// Sizes and offsets that did not fit 32 bits, from the ZIP64 extra field.
fn zip64_extra(extra: &[u8], has_usize: bool, size: u64, local: u64) -> std::result::Result<(u64, u64), &'static str> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (u16le(extra, at), u16le(extra, at + 2) as usize);
        let body = extra.get(at + 4..at + 4 + len).ok_or("truncated extra field")?;
        if id == 1 {
            let mut vals = body.chunks_exact(8).map(|c| u64le(c, 0));
            if has_usize {
                // The uncompressed size comes first; stored entries repeat it as the compressed one.
                vals.next();
            }
            let csize = if size == 0xffff_ffff { vals.next().ok_or("ZIP64 size missing")? } else { size };
            let off = if local == 0xffff_ffff { vals.next().ok_or("ZIP64 offset missing")? } else { local };
            return Ok((csize, off));
        }
        at += 4 + len;
    }
    Err("ZIP64 extra field missing")
}
