//! Finds the prompted sprites of the tiny model's world (`weights/train/vssm/world.py`)
//! in generated frames and checks that their motion is continuous: the same measure as
//! `weights/train/eval.py`, so the embedded model's test and bench agree with training.
//!
//! The world's prompts name shapes and leave the colours to chance, so each prompted
//! object is looked for in every colour the prompt leaves open (the palette less the
//! background and any colour named for another object) whose blobs fit the object's shape
//! more often over the video than any other shape. Per colour, it is present where
//! that colour forms a blob of at least 20 px, and found where, in most frames within ±4
//! (a sprite briefly behind another keeps its identity), the blob's best-matching template
//! (circle, square or triangle of radius 5-10) is the prompted shape with IoU >= 0.3; of
//! the colours that pass, the largest blob is the object's in that frame. A centre jump
//! of more than 6 px between frames is a teleport (sprites move <= 2 px per frame); less
//! than 2 px of path over 16 frames (1 s) is frozen (sprites never stop).
//!
//! The memory measure, `kept`: a return is a frame where an object is found after more
//! than 36 frames (the 9-latent-frame window) without it; it is kept when the commonest
//! colour of the object's first 8 found frames from there is that of its first 8 found
//! frames in the video. The world's sprites leave the view for longer than the window, so
//! only the memory can keep their colour (chance: 1 in 7).

pub const SIZE: usize = 64;
pub const COLOURS: &[(&str, [f32; 3])] = &[
    ("red", [230.0, 40.0, 40.0]),
    ("green", [40.0, 200.0, 60.0]),
    ("blue", [50.0, 80.0, 240.0]),
    ("yellow", [240.0, 220.0, 40.0]),
    ("cyan", [40.0, 220.0, 230.0]),
    ("magenta", [220.0, 50.0, 220.0]),
    ("orange", [250.0, 140.0, 20.0]),
    ("white", [245.0, 245.0, 245.0]),
];
pub const SHAPES: &[&str] = &["circle", "square", "triangle"];
pub const BACKGROUNDS: &[&str] = &["black", "gray", "white"];
const COLOUR_TOL: f32 = 80.0;
const GAP: usize = 36;
const FIRST_FOUND: usize = 8;
const VOTE_HALF: usize = 4;
const JUMP: f64 = 6.0;
const STILL: f64 = 2.0;
const SPAN: usize = 16;

/// The objects a prompt names, in order (their colour where named: the earlier world's
/// prompts did), and its background.
pub fn objects(prompt: &str) -> (Vec<(Option<&'static str>, &'static str)>, Option<&'static str>) {
    let words: Vec<String> = prompt.replace(',', " ").split_whitespace().map(str::to_lowercase).collect();
    let colour = |w: &str| COLOURS.iter().map(|c| c.0).find(|c| *c == w);
    let objs = (0..words.len())
        .filter_map(|i| {
            let shape = *SHAPES.iter().find(|s| **s == words[i])?;
            Some((i.checked_sub(1).and_then(|p| colour(&words[p])), shape))
        })
        .collect();
    let background = words.last().and_then(|w| BACKGROUNDS.iter().copied().find(|b| b == w));
    (objs, background)
}

/// Signed distance of pixel offset (dx, dy) from a sprite's edge, as the world draws it.
fn distance(shape: &str, dx: f64, dy: f64, r: f64) -> f64 {
    match shape {
        "circle" => (dx * dx + dy * dy).sqrt() - r,
        "square" => dx.abs().max(dy.abs()) - 0.85 * r,
        _ => {
            let k = 3f64.sqrt() / 2.0;
            (dy - 0.5 * r).max(-k * dx - 0.5 * dy - 0.5 * r).max(k * dx - 0.5 * dy - 0.5 * r)
        }
    }
}

/// The best template (IoU, shape) for a blob mask centred at (cx, cy).
fn best_shape(mask: &[bool], cx: f64, cy: f64) -> (f64, &'static str) {
    let mut best = (0.0, "");
    for &shape in SHAPES {
        for r in [5.0, 6.0, 7.0, 8.0, 9.0, 10.0] {
            let (mut inter, mut union) = (0usize, 0usize);
            for (i, &m) in mask.iter().enumerate() {
                let (x, y) = ((i % SIZE) as f64, (i / SIZE) as f64);
                let t = distance(shape, x - cx, y - cy, r) < 0.0;
                inter += (t && m) as usize;
                union += (t || m) as usize;
            }
            let iou = inter as f64 / union.max(1) as f64;
            if iou > best.0 {
                best = (iou, shape);
            }
        }
    }
    best
}

/// What the measure says of one video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Share of (frame, object) pairs found.
    pub found: f64,
    /// Share of frames with every object found, none teleported and none frozen.
    pub coherent: f64,
    pub teleports: usize,
    /// Share of frames in which some object is frozen.
    pub frozen: f64,
    /// Objects found again after more than `GAP` frames without them.
    pub returns: usize,
    /// Returns in the colour of the object's first appearance.
    pub kept_returns: usize,
}

impl Score {
    /// The memory measure: the share of returns that kept their colour (None without returns).
    pub fn kept(&self) -> Option<f64> {
        (self.returns > 0).then(|| self.kept_returns as f64 / self.returns as f64)
    }
}

/// One colour's pixels in a frame: count, centre, best template (IoU, shape).
struct Blob {
    pixels: usize,
    centre: (f64, f64),
    fit: (f64, &'static str),
}

fn blob(frame: &[u8], rgb: [f32; 3]) -> Option<Blob> {
    let mask: Vec<bool> =
        frame.chunks_exact(3).map(|p| (0..3).map(|k| (p[k] as f32 - rgb[k]).powi(2)).sum::<f32>().sqrt() < COLOUR_TOL).collect();
    let pixels = mask.iter().filter(|&&m| m).count();
    if pixels < 20 {
        return None;
    }
    let (sx, sy) =
        mask.iter().enumerate().filter(|(_, &m)| m).fold((0.0, 0.0), |(sx, sy), (p, _)| (sx + (p % SIZE) as f64, sy + (p / SIZE) as f64));
    let centre = (sx / pixels as f64, sy / pixels as f64);
    Some(Blob { pixels, centre, fit: best_shape(&mask, centre.0, centre.1) })
}

/// The commonest colour among the first `FIRST_FOUND` of `found` (frame indices), the
/// earliest on a tie.
fn commonest(colours: &[Option<usize>], found: &[usize]) -> Option<usize> {
    let names: Vec<_> = found.iter().take(FIRST_FOUND).map(|&t| colours[t]).collect();
    let count = |c: &Option<usize>| names.iter().filter(|d| *d == c).count();
    names.iter().fold(None, |best: Option<Option<usize>>, c| match best {
        Some(b) if count(&b) >= count(c) => Some(b),
        _ => Some(*c),
    })?
}

/// Scores RGB frames (`SIZE`×`SIZE`×3 bytes each) against a prompt of the world.
pub fn score(frames: &[Vec<u8>], prompt: &str) -> Score {
    let (objs, background) = objects(prompt);
    let (t_len, n) = (frames.len(), objs.len());
    let named: Vec<&str> = objs.iter().filter_map(|o| o.0).collect();
    let open: Vec<bool> = COLOURS.iter().map(|(c, _)| Some(*c) != background && !named.contains(c)).collect();
    let blobs: Vec<Vec<Option<Blob>>> = frames
        .iter()
        .enumerate()
        .map(|(t, f)| {
            assert_eq!(f.len(), SIZE * SIZE * 3, "frame {t} is not {SIZE}x{SIZE} RGB");
            COLOURS.iter().zip(&open).map(|((c, rgb), &o)| if o || named.contains(c) { blob(f, *rgb) } else { None }).collect()
        })
        .collect();
    // An open colour belongs to the shape its blobs fit most often over the video: in a
    // frame where a sprite is half out of view or behind another, its blob can fit
    // another shape, and must not then stand for another object.
    let owner: Vec<Option<&str>> = (0..COLOURS.len())
        .map(|c| {
            let fits = |shape: &str| blobs.iter().filter(|b| b[c].as_ref().is_some_and(|b| b.fit.1 == shape && b.fit.0 >= 0.3)).count();
            let best = SHAPES.iter().copied().fold(None, |best: Option<(&str, usize)>, sh| match best {
                Some((_, k)) if k >= fits(sh) => best,
                _ => Some((sh, fits(sh))),
            })?;
            (open[c] && best.1 > 0).then_some(best.0)
        })
        .collect();
    let candidates: Vec<Vec<usize>> = objs
        .iter()
        .map(|(colour, shape)| {
            (0..COLOURS.len())
                .filter(|&c| match colour {
                    Some(name) => COLOURS[c].0 == *name,
                    None => owner[c] == Some(*shape),
                })
                .collect()
        })
        .collect();
    let mut found = vec![vec![false; n]; t_len];
    let mut centre = vec![vec![(f64::NAN, f64::NAN); n]; t_len];
    let mut colour: Vec<Vec<Option<usize>>> = vec![vec![None; n]; t_len];
    for (i, (_, shape)) in objs.iter().enumerate() {
        for &c in &candidates[i] {
            let shape_ok = |u: usize| blobs[u][c].as_ref().is_some_and(|b| b.fit.1 == *shape && b.fit.0 >= 0.3);
            for t in 0..t_len {
                let Some(b) = &blobs[t][c] else { continue };
                let span = t.saturating_sub(VOTE_HALF)..(t + VOTE_HALF + 1).min(t_len);
                let votes = span.clone().filter(|&u| blobs[u][c].is_some()).count();
                let ok = span.filter(|&u| shape_ok(u)).count();
                let larger = colour[t][i].map_or(true, |d| b.pixels > blobs[t][d].as_ref().map_or(0, |e| e.pixels));
                if 2 * ok >= votes && larger {
                    (found[t][i], centre[t][i], colour[t][i]) = (true, b.centre, Some(c));
                }
            }
        }
    }
    let dist = |a: (f64, f64), b: (f64, f64)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let mut teleport = vec![vec![false; n]; t_len];
    let mut frozen = vec![vec![false; n]; t_len];
    let (mut returns, mut kept_returns) = (0, 0);
    for i in 0..n {
        for t in 1..t_len {
            teleport[t][i] = found[t][i] && found[t - 1][i] && dist(centre[t][i], centre[t - 1][i]) > JUMP;
        }
        for t in SPAN..t_len {
            if (t - SPAN..=t).all(|u| found[u][i]) {
                let path: f64 = (t - SPAN + 1..=t).map(|u| dist(centre[u][i], centre[u - 1][i])).sum();
                if path < STILL {
                    (t - SPAN..=t).for_each(|u| frozen[u][i] = true);
                }
            }
        }
        let seen: Vec<usize> = (0..t_len).filter(|&t| found[t][i]).collect();
        let own: Vec<Option<usize>> = (0..t_len).map(|t| colour[t][i]).collect();
        let first = commonest(&own, &seen);
        for j in (1..seen.len()).filter(|&j| seen[j] - seen[j - 1] > GAP) {
            returns += 1;
            kept_returns += (commonest(&own, &seen[j..]) == first) as usize;
        }
    }
    let frames_where = |p: &dyn Fn(usize) -> bool| (0..t_len).filter(|&t| p(t)).count() as f64 / t_len.max(1) as f64;
    Score {
        found: found.iter().flatten().filter(|&&f| f).count() as f64 / (t_len * n).max(1) as f64,
        coherent: frames_where(&|t| (0..n).all(|i| found[t][i] && !teleport[t][i] && !frozen[t][i])),
        teleports: teleport.iter().flatten().filter(|&&x| x).count(),
        frozen: frames_where(&|t| frozen[t].iter().any(|&f| f)),
        returns,
        kept_returns,
    }
}

/// Draws sprites the way the world does (hard edges), for the detector's own test.
pub fn draw(background: [u8; 3], sprites: &[(&str, &str, f64, f64)]) -> Vec<u8> {
    let mut f: Vec<u8> = (0..SIZE * SIZE).flat_map(|_| background).collect();
    for &(colour, shape, cx, cy) in sprites {
        let rgb = COLOURS.iter().find(|(c, _)| *c == colour).expect("a world colour").1;
        for p in 0..SIZE * SIZE {
            let (x, y) = ((p % SIZE) as f64 + 0.5, (p / SIZE) as f64 + 0.5);
            if distance(shape, x - cx, y - cy, 7.5) < 0.0 {
                f[3 * p..3 * p + 3].copy_from_slice(&rgb.map(|v| v as u8));
            }
        }
    }
    f
}
