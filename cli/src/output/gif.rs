//! Animated GIF (NeuQuant palette per frame). After every chunk the GIF trailer is
//! written past the last frame and overwritten by the next one, so the file on disk
//! is always a complete animation.
use super::VideoWriter;
use crate::error::{invalid, io, Error, Result};
use crate::generate::Frame;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// GIF's end-of-stream byte.
const TRAILER: u8 = 0x3b;

/// A file whose `flush` leaves a trailer after the data without counting it as written.
struct Trailered(File);

impl Write for Trailered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.write_all(&[TRAILER])?;
        self.0.seek(SeekFrom::Current(-1))?;
        self.0.flush()
    }
}

pub struct GifWriter {
    enc: gif::Encoder<std::io::BufWriter<Trailered>>,
    path: PathBuf,
    width: u16,
    height: u16,
    /// Frame delays in 1/100 s, rounded so the total keeps pace with `fps`.
    fps: f64,
    frames: u64,
}

impl GifWriter {
    pub fn create(path: &Path, width: usize, height: usize, fps: f64) -> Result<GifWriter> {
        let (w, h) = (u16::try_from(width), u16::try_from(height));
        let (Ok(w), Ok(h)) = (w, h) else {
            return Err(invalid("--output", format!("{width}x{height}: a GIF is at most 65535 pixels on a side")));
        };
        let file = File::create(path).map_err(io(path))?;
        let err = |e: gif::EncodingError| gif_error(path, e);
        let mut enc = gif::Encoder::new(std::io::BufWriter::new(Trailered(file)), w, h, &[]).map_err(err)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(err)?;
        Ok(GifWriter { enc, path: path.into(), width: w, height: h, fps, frames: 0 })
    }
}

fn gif_error(path: &Path, e: gif::EncodingError) -> Error {
    match e {
        gif::EncodingError::Io(source) => Error::Io { path: path.into(), source },
        other => invalid("gif", format!("{}: {other}", path.display())),
    }
}

impl VideoWriter for GifWriter {
    fn write(&mut self, frames: &[Frame]) -> Result<()> {
        for f in frames {
            let mut frame = gif::Frame::from_rgb_speed(self.width, self.height, &f.rgb, 10);
            let at = |n: u64| (n as f64 * 100.0 / self.fps).round() as u64;
            frame.delay = (at(self.frames + 1) - at(self.frames)) as u16;
            self.enc.write_frame(&frame).map_err(|e| gif_error(&self.path, e))?;
            self.frames += 1;
        }
        let out = self.enc.get_mut();
        out.flush().and_then(|_| out.get_mut().flush()).map_err(io(&self.path))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        // Dropping the encoder writes the trailer in place of the provisional one.
        let GifWriter { enc, path, .. } = *self;
        let out = enc.into_inner().map_err(|e| gif_error(&path, e))?;
        // Not `flush()`, which would add a provisional trailer after the real one.
        let mut file = out.into_inner().map_err(|e| Error::Io { path: path.clone(), source: e.into_error() })?;
        file.0.flush().map_err(io(&path))
    }
}
