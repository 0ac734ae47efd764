//! A small random model folder, the CLI binary, and readers for every output format.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use videossm::synthetic::{write_small_model_folder, write_small_model_folder_with};

/// The test model ([`write_small_model_folder`]), written once per process.
pub fn model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("model");
        write_small_model_folder(&dir).expect("writing the test model");
        dir
    })
}

/// The test model with the paper's gated delta memory (MEMORY.md B.6), written once per process.
pub fn model_dir_gated_delta() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("model-gd");
        write_small_model_folder_with(&dir, weights::MemoryType::GatedDelta).expect("writing the gated delta test model");
        dir
    })
}

/// A fresh empty folder under the target's scratch space.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("product-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn videossm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_videossm"))
}

/// `videossm generate` on the test model with `args`.
pub fn generate(args: &[&str]) -> Command {
    let mut c = videossm();
    c.arg("generate").arg("--model").arg(model_dir()).args(args);
    c
}

/// Runs to completion; panics with the output unless it succeeded.
pub fn ok(mut c: Command) -> Output {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// (width, height, frames) of a y4m stream.
pub fn read_y4m(bytes: &[u8]) -> (usize, usize, usize) {
    let end = bytes.iter().position(|&b| b == b'\n').expect("y4m header");
    let header = std::str::from_utf8(&bytes[..end]).unwrap();
    assert!(header.starts_with("YUV4MPEG2 "), "{header}");
    let field = |c: char| header.split(' ').find_map(|f| f.strip_prefix(c)).and_then(|v| v.parse::<usize>().ok()).unwrap();
    let (w, h) = (field('W'), field('H'));
    let frame = 6 + w * h * 3 / 2;
    let body = &bytes[end + 1..];
    assert_eq!(body.len() % frame, 0, "y4m body is not whole frames");
    for f in body.chunks(frame) {
        assert_eq!(&f[..6], b"FRAME\n");
    }
    (w, h, body.len() / frame)
}

/// (width, height, frames) of a GIF.
pub fn read_gif(path: &Path) -> (usize, usize, usize) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut d = opts.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let (w, h) = (d.width() as usize, d.height() as usize);
    let mut n = 0;
    while d.read_next_frame().unwrap().is_some() {
        n += 1;
    }
    (w, h, n)
}

/// (width, height, frames) of a folder of PNGs, each decoded.
pub fn read_pngs(dir: &Path) -> (usize, usize, usize) {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let mut size = (0, 0);
    for (i, p) in names.iter().enumerate() {
        assert_eq!(p.file_name().unwrap().to_string_lossy(), format!("frame_{i:06}.png"));
        let mut r = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap())).read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        size = (info.width as usize, info.height as usize);
    }
    (size.0, size.1, names.len())
}

/// The top-level boxes of an MP4 as (type, body), stopping at a cut-off box.
fn boxes(b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 <= b.len() {
        let len = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
        if len < 8 || i + len > b.len() {
            break;
        }
        out.push((b[i + 4..i + 8].try_into().unwrap(), &b[i + 8..i + len]));
        i += len;
    }
    out
}

/// The first child box of `kind` inside `body` (skipping `skip` bytes of fields first).
fn child<'a>(body: &'a [u8], skip: usize, kind: &[u8; 4]) -> &'a [u8] {
    boxes(&body[skip..]).into_iter().find(|(k, _)| k == kind).unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(kind))).1
}

/// (width, height, frames) of a fragmented MP4, every sample decoded by OpenH264.
/// Fragments cut off at the end of the file are ignored, as players do.
pub fn read_mp4(path: &Path) -> (usize, usize, usize) {
    let mut bytes = Vec::new();
    std::fs::File::open(path).unwrap().read_to_end(&mut bytes).unwrap();
    let top = boxes(&bytes);
    assert_eq!(&top[0].0, b"ftyp");
    let moov = top.iter().find(|(k, _)| k == b"moov").expect("moov").1;
    let stsd = child(child(child(child(child(moov, 0, b"trak"), 0, b"mdia"), 0, b"minf"), 0, b"stbl"), 0, b"stsd");
    let avc1 = child(stsd, 8, b"avc1");
    let (w, h) = (u16::from_be_bytes([avc1[24], avc1[25]]) as usize, u16::from_be_bytes([avc1[26], avc1[27]]) as usize);
    let avcc = child(avc1, 78, b"avcC");
    let sps_len = u16::from_be_bytes([avcc[6], avcc[7]]) as usize;
    let sps = &avcc[8..8 + sps_len];
    let pps = &avcc[8 + sps_len + 3..];
    let mut dec = openh264::decoder::Decoder::new().unwrap();
    let annexb = |nal: &[u8]| [&[0u8, 0, 0, 1][..], nal].concat();
    let _ = dec.decode(&[annexb(sps), annexb(pps)].concat());
    let mut frames = 0;
    for pair in top.windows(2) {
        let ((k, moof), (m, mdat)) = (pair[0], pair[1]);
        if k != *b"moof" || m != *b"mdat" {
            continue;
        }
        let trun = child(child(moof, 0, b"traf"), 0, b"trun");
        let count = u32::from_be_bytes(trun[4..8].try_into().unwrap()) as usize;
        let mut at = 0;
        for s in 0..count {
            let size = u32::from_be_bytes(trun[12 + 12 * s + 4..12 + 12 * s + 8].try_into().unwrap()) as usize;
            let mut sample = &mdat[at..at + size];
            at += size;
            let mut packet = Vec::new();
            while !sample.is_empty() {
                let n = u32::from_be_bytes(sample[..4].try_into().unwrap()) as usize;
                packet.extend(annexb(&sample[4..4 + n]));
                sample = &sample[4 + n..];
            }
            if let Some(yuv) = dec.decode(&packet).unwrap() {
                use openh264::formats::YUVSource;
                assert_eq!(yuv.dimensions(), (w, h));
                frames += 1;
            }
        }
    }
    frames += dec.flush_remaining().unwrap().len();
    (w, h, frames)
}
