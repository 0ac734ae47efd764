//! YUV4MPEG2: a text header, then `FRAME\n` + I420 planes per frame. Every chunk
//! is flushed whole, so the file or pipe always ends on a frame boundary.
use super::{to_yuv, VideoWriter};
use crate::error::{io, Result};
use crate::generate::Frame;
use openh264::formats::YUVSource;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Y4mWriter {
    out: Box<dyn Write>,
    path: PathBuf,
}

fn header(width: usize, height: usize, fps: f64) -> String {
    // Frame rate as a fraction with millihertz precision.
    format!("YUV4MPEG2 W{width} H{height} F{}:1000 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n", (fps * 1000.0).round() as u64)
}

impl Y4mWriter {
    pub fn create(path: &Path, width: usize, height: usize, fps: f64) -> Result<Y4mWriter> {
        let file = std::fs::File::create(path).map_err(io(path))?;
        Y4mWriter::start(Box::new(std::io::BufWriter::new(file)), path.into(), width, height, fps)
    }

    pub fn stdout(width: usize, height: usize, fps: f64) -> Result<Y4mWriter> {
        Y4mWriter::start(Box::new(std::io::stdout()), "stdout".into(), width, height, fps)
    }

    fn start(mut out: Box<dyn Write>, path: PathBuf, width: usize, height: usize, fps: f64) -> Result<Y4mWriter> {
        out.write_all(header(width, height, fps).as_bytes()).and_then(|_| out.flush()).map_err(io(&path))?;
        Ok(Y4mWriter { out, path })
    }
}

impl VideoWriter for Y4mWriter {
    fn write(&mut self, frames: &[Frame]) -> Result<()> {
        let mut buf = Vec::new();
        for f in frames {
            let yuv = to_yuv(f);
            buf.extend_from_slice(b"FRAME\n");
            buf.extend_from_slice(yuv.y());
            buf.extend_from_slice(yuv.u());
            buf.extend_from_slice(yuv.v());
        }
        self.out.write_all(&buf).and_then(|_| self.out.flush()).map_err(io(&self.path))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(io(&self.path))
    }
}
