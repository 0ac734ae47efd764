//! A folder of `frame_000000.png`, ...: each frame written beside its name and
//! renamed, so every file present is a whole image.
use super::VideoWriter;
use crate::error::{io, Error, Result};
use crate::generate::Frame;
use std::path::{Path, PathBuf};

pub struct PngWriter {
    dir: PathBuf,
    next: usize,
}

impl PngWriter {
    pub fn create(dir: &Path) -> Result<PngWriter> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        // Probe now: a read-only folder should fail before the model loads.
        let probe = dir.join(".videossm-write-test");
        std::fs::write(&probe, b"").map_err(io(dir))?;
        std::fs::remove_file(&probe).map_err(io(&probe))?;
        Ok(PngWriter { dir: dir.into(), next: 0 })
    }

    fn write_one(&self, f: &Frame, path: &Path) -> Result<()> {
        let tmp = path.with_extension("partial");
        let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        encode(f, std::io::BufWriter::new(file)).map_err(|e| match e {
            png::EncodingError::IoError(source) => Error::Io { path: tmp.clone(), source },
            other => crate::error::invalid("png", other.to_string()),
        })?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }
}

/// One RGB8 frame as a PNG image into `out`.
pub fn encode(f: &Frame, out: impl std::io::Write) -> std::result::Result<(), png::EncodingError> {
    let mut enc = png::Encoder::new(out, f.width as u32, f.height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header()?;
    w.write_image_data(&f.rgb)?;
    w.finish()
}

impl VideoWriter for PngWriter {
    fn write(&mut self, frames: &[Frame]) -> Result<()> {
        for f in frames {
            let path = self.dir.join(format!("frame_{:06}.png", self.next));
            self.write_one(f, &path)?;
            self.next += 1;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
