//! Prompt schedules: `0s: a cat sits` / `12s: the cat jumps` / `1m30s: ...`, one
//! per line (`#` comments and blank lines ignored), each applied from the chunk
//! holding that instant of the video on.
use crate::error::{Result, WeightsError};
use std::path::Path;

/// Prompt files are a few lines; a bigger one is not a schedule.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Times past a day are typos, not videos.
const MAX_SECONDS: f64 = 86_400.0;

#[derive(Clone, Debug, PartialEq)]
pub struct Cue {
    pub seconds: f64,
    pub prompt: String,
    /// 1-based line of the file, for messages.
    pub line: usize,
}

/// Time stamps in increasing order, each with its prompt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    pub cues: Vec<Cue>,
}

/// `12s`, `1.5s`, `2m`, `1m30s`, `1h2m3s`.
pub fn parse_time(s: &str) -> std::result::Result<f64, String> {
    let bad = || format!("{s:?} is not a time: write e.g. 0s, 12s, 1.5s, 2m, 1m30s");
    let (mut total, mut rest, mut last_unit) = (0.0, s.trim(), 4);
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let value: f64 = rest[..end].parse().map_err(|_| bad())?;
        let unit = rest[end..].chars().next().ok_or_else(bad)?;
        let (rank, scale) = match unit {
            'h' => (0, 3600.0),
            'm' => (1, 60.0),
            's' => (2, 1.0),
            _ => return Err(bad()),
        };
        // Units in order h, m, s, each at most once.
        if last_unit != 4 && rank <= last_unit {
            return Err(bad());
        }
        last_unit = rank;
        total += value * scale;
        rest = &rest[end + 1..];
    }
    if !(total.is_finite() && total <= MAX_SECONDS) {
        return Err(format!("{s:?} is past {MAX_SECONDS} s"));
    }
    Ok(total)
}

impl Schedule {
    pub fn parse(text: &str, path: &Path) -> Result<Schedule> {
        let err = |line: usize, message: String| WeightsError::PromptFile { path: path.into(), line, message };
        let mut cues: Vec<Cue> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (time, prompt) =
                l.split_once(':').ok_or_else(|| err(line, format!("{l:?}: expected `TIME: prompt`, e.g. `12s: the cat jumps`")))?;
            let seconds = parse_time(time).map_err(|m| err(line, m))?;
            let prompt = prompt.trim();
            if prompt.is_empty() {
                return Err(err(line, "the prompt is empty".into()));
            }
            if let Some(prev) = cues.last() {
                if seconds <= prev.seconds {
                    return Err(err(line, format!("{time} is not after {}s of line {}: times must increase", prev.seconds, prev.line)));
                }
            }
            cues.push(Cue { seconds, prompt: prompt.to_string(), line });
        }
        if cues.is_empty() {
            return Err(err(0, "no prompts: write lines like `0s: a cat sits`".into()));
        }
        Ok(Schedule { cues })
    }

    pub fn load(path: &Path) -> Result<Schedule> {
        let len = std::fs::metadata(path).map_err(crate::error::io(path))?.len();
        if len > MAX_FILE_BYTES {
            return Err(WeightsError::PromptFile {
                path: path.into(),
                line: 0,
                message: format!("{len} bytes; a prompt file is at most {MAX_FILE_BYTES}"),
            });
        }
        let bytes = std::fs::read(path).map_err(crate::error::io(path))?;
        let text = String::from_utf8(bytes).map_err(|e| WeightsError::PromptFile {
            path: path.into(),
            line: 0,
            message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        })?;
        Schedule::parse(&text, path)
    }

    /// The prompt of every chunk in `0..chunks` where it changes, as (chunk, prompt):
    /// a cue applies from the chunk holding its first frame, the last cue of a chunk winning.
    pub fn per_chunk(&self, fps: f64, chunk_of_frame: impl Fn(usize) -> usize) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = Vec::new();
        for c in &self.cues {
            let chunk = chunk_of_frame((c.seconds * fps).floor() as usize);
            match out.last_mut() {
                Some(last) if last.0 == chunk => {
                    log::warn!("line {}: {:?} replaces the prompt before it in chunk {chunk}", c.line, c.prompt);
                    last.1 = c.prompt.clone();
                }
                _ => out.push((chunk, c.prompt.clone())),
            }
        }
        out
    }
}
