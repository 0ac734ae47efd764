//! Video outputs chosen by the `-o` path: `.mp4` (H.264, fragmented), `.gif`, a
//! folder of PNGs, `.y4m`, or `-` for y4m on stdout. Each chunk's frames are
//! written and flushed as they come, so an interrupted run leaves a valid file
//! holding every finished frame.
mod fmp4;
mod gif;
mod mp4;
mod png;
mod y4m;

use crate::error::{invalid, Result};
use crate::generate::Frame;
use std::path::{Path, PathBuf};

/// Where the frames go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Mp4(PathBuf),
    Gif(PathBuf),
    PngDir(PathBuf),
    Y4m(PathBuf),
    Stdout,
}

pub const FORMATS: &str = ".mp4, .gif, .y4m, a folder for PNGs (a path ending in / or without extension), or - for y4m on stdout";

impl Target {
    pub fn parse(path: &str) -> Result<Target> {
        if path == "-" {
            return Ok(Target::Stdout);
        }
        if path.is_empty() {
            return Err(invalid("--output", format!("empty path: use {FORMATS}")));
        }
        let p = PathBuf::from(path);
        let ext = p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        Ok(match ext.as_deref() {
            _ if path.ends_with('/') || p.is_dir() => Target::PngDir(p),
            Some("mp4") => Target::Mp4(p),
            Some("gif") => Target::Gif(p),
            Some("y4m") => Target::Y4m(p),
            None => Target::PngDir(p),
            Some(other) => return Err(invalid("--output", format!("{path}: unknown extension .{other}; use {FORMATS}"))),
        })
    }

    /// Opens the file (or creates the folder) now, so an unwritable path fails before
    /// the model loads; an existing file is left as it is until frames come. Returns
    /// whether a new file was made (for [`Target::discard`]).
    pub fn check(&self) -> Result<bool> {
        match self {
            Target::Mp4(p) | Target::Gif(p) | Target::Y4m(p) => {
                let existed = p.exists();
                std::fs::OpenOptions::new().append(true).create(true).open(p).map_err(crate::error::io(p))?;
                Ok(!existed)
            }
            Target::PngDir(p) => png::PngWriter::create(p).map(|_| false),
            Target::Stdout => Ok(false),
        }
    }

    /// Removes the empty file [`Target::check`] made, for a run that never started.
    pub fn discard(&self) {
        if let Target::Mp4(p) | Target::Gif(p) | Target::Y4m(p) = self {
            if std::fs::metadata(p).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// The file or folder written ("stdout" for `-`).
    pub fn path(&self) -> &Path {
        match self {
            Target::Mp4(p) | Target::Gif(p) | Target::PngDir(p) | Target::Y4m(p) => p,
            Target::Stdout => Path::new("stdout"),
        }
    }
}

/// An open output: frames in, a valid file after every call.
pub trait VideoWriter {
    /// Writes and flushes one chunk's frames.
    fn write(&mut self, frames: &[Frame]) -> Result<()>;
    /// Completes the file (indexes, trailers).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Opens `target` for frames of `width × height` at `fps`, creating (or truncating) it now
/// so an unwritable path fails before any generation.
pub fn open(target: &Target, width: usize, height: usize, fps: f64) -> Result<Box<dyn VideoWriter>> {
    Ok(match target {
        Target::Mp4(p) => Box::new(mp4::Mp4Writer::create(p, width, height, fps)?),
        Target::Gif(p) => Box::new(gif::GifWriter::create(p, width, height, fps)?),
        Target::PngDir(p) => Box::new(png::PngWriter::create(p)?),
        Target::Y4m(p) => Box::new(y4m::Y4mWriter::create(p, width, height, fps)?),
        Target::Stdout => Box::new(y4m::Y4mWriter::stdout(width, height, fps)?),
    })
}

/// One frame as a PNG file in memory (the frames `serve` sends to the browser).
pub fn png_bytes(frame: &Frame) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    png::encode(frame, &mut out).map_err(|e| invalid("png", e.to_string()))?;
    Ok(out)
}

/// I420 planes of an RGB8 frame (BT.601 limited range, as the H.264 encoder takes them).
pub(crate) fn to_yuv(frame: &Frame) -> openh264::formats::YUVBuffer {
    openh264::formats::YUVBuffer::from_rgb8_source(openh264::formats::RgbSliceU8::new(&frame.rgb, (frame.width, frame.height)))
}
