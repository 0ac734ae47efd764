//! H.264 in fragmented MP4: OpenH264 encodes each frame, every chunk becomes one
//! `moof`+`mdat` fragment appended and flushed, so a cut-off file plays up to its
//! last finished chunk.
use super::fmp4::{fragment, header, Sample, Track};
use super::{to_yuv, VideoWriter};
use crate::error::{invalid, io, Result};
use crate::generate::Frame;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, FrameType, RateControlMode};
use openh264::OpenH264API;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Ticks per frame; the timescale is fps × this.
const TICKS: u32 = 1000;

pub struct Mp4Writer {
    file: File,
    path: PathBuf,
    encoder: Encoder,
    /// Known once the first frame is coded (its SPS/PPS go into the header).
    track: Option<Track>,
    size: (u16, u16),
    timescale: u32,
    fragments: u32,
    frames: u64,
}

/// NAL units without their Annex B start codes.
fn strip_start_code(nal: &[u8]) -> &[u8] {
    nal.strip_prefix(&[0, 0, 0, 1]).or_else(|| nal.strip_prefix(&[0, 0, 1])).unwrap_or(nal)
}

fn h264(e: openh264::Error) -> crate::Error {
    invalid("mp4", format!("H.264 encoder: {e}"))
}

impl Mp4Writer {
    pub fn create(path: &Path, width: usize, height: usize, fps: f64) -> Result<Mp4Writer> {
        if !width.is_multiple_of(2) || !height.is_multiple_of(2) || width > 4096 || height > 4096 {
            return Err(invalid("--output", format!("{width}x{height}: H.264 here takes even sizes up to 4096")));
        }
        let file = File::create(path).map_err(io(path))?;
        let bitrate = (width * height) as f64 * fps * 0.15;
        let config = EncoderConfig::new()
            .skip_frames(false)
            .rate_control_mode(RateControlMode::Bufferbased)
            .bitrate(BitRate::from_bps(bitrate.clamp(200_000.0, 20_000_000.0) as u32))
            .max_frame_rate(FrameRate::from_hz(fps as f32));
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config).map_err(h264)?;
        let timescale = (fps * TICKS as f64).round() as u32;
        Ok(Mp4Writer {
            file,
            path: path.into(),
            encoder,
            track: None,
            size: (width as u16, height as u16),
            timescale,
            fragments: 0,
            frames: 0,
        })
    }

    /// Codes one frame into a length-prefixed sample; parameter sets are kept for the header.
    fn encode(&mut self, f: &Frame) -> Result<Sample> {
        let bits = self.encoder.encode(&to_yuv(f)).map_err(h264)?;
        let sync = matches!(bits.frame_type(), FrameType::IDR | FrameType::I);
        let (mut data, mut sps, mut pps) = (Vec::new(), None, None);
        for l in 0..bits.num_layers() {
            let Some(layer) = bits.layer(l) else { continue };
            for n in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(n).map(strip_start_code) else { continue };
                match nal.first().map(|b| b & 0x1f) {
                    Some(7) => sps = Some(nal.to_vec()),
                    Some(8) => pps = Some(nal.to_vec()),
                    Some(_) => {
                        data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                        data.extend_from_slice(nal);
                    }
                    None => {}
                }
            }
        }
        if self.track.is_none() {
            let (Some(sps), Some(pps)) = (sps, pps) else {
                return Err(invalid("mp4", "the H.264 encoder's first frame has no SPS/PPS"));
            };
            let (width, height) = self.size;
            let track = Track { width, height, timescale: self.timescale, sample_duration: TICKS, sps, pps };
            self.file.write_all(&header(&track)).map_err(io(&self.path))?;
            self.track = Some(track);
        }
        Ok(Sample { data, sync })
    }
}

impl VideoWriter for Mp4Writer {
    fn write(&mut self, frames: &[Frame]) -> Result<()> {
        let samples = frames.iter().map(|f| self.encode(f)).collect::<Result<Vec<_>>>()?;
        let Some(track) = &self.track else { return Ok(()) };
        self.fragments += 1;
        let bytes = fragment(track, self.fragments, self.frames * TICKS as u64, &samples);
        self.frames += samples.len() as u64;
        self.file.write_all(&bytes).and_then(|_| self.file.flush()).map_err(io(&self.path))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.file.sync_data().map_err(io(&self.path))
    }
}
