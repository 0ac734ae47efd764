//! Finds the prompted sprites of the tiny model's world (`weights/train/vssm/world.py`)
//! in generated frames and checks that their motion is continuous: the same measure as
//! `weights/train/eval.py`, so the embedded model's test and bench agree with training.
//!
//! Per frame, each prompted object (colour + shape) is found when the pixels of its
//! colour form a blob of at least 20 px whose best-matching template (circle, square or
//! triangle of radius 5-10) is the prompted shape with IoU >= 0.3, in most frames within
//! ±4 frames (a sprite briefly behind another keeps its identity). A centre jump of
//! more than 6 px between frames is a teleport (sprites move <= 2 px per frame); less
//! than 2 px of path over 16 frames (1 s) is frozen (sprites never stop).

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
const COLOUR_TOL: f32 = 80.0;
const VOTE_HALF: usize = 4;
const JUMP: f64 = 6.0;
const STILL: f64 = 2.0;
const SPAN: usize = 16;

/// The (colour, shape) pairs a prompt names, in order.
pub fn objects(prompt: &str) -> Vec<(&'static str, &'static str)> {
    let words: Vec<String> = prompt.replace(',', " ").split_whitespace().map(str::to_lowercase).collect();
    words
        .windows(2)
        .filter_map(|w| {
            let colour = COLOURS.iter().find(|(c, _)| *c == w[0])?.0;
            let shape = *SHAPES.iter().find(|s| **s == w[1])?;
            Some((colour, shape))
        })
        .collect()
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
}

/// Scores RGB frames (`SIZE`×`SIZE`×3 bytes each) against a prompt of the world.
pub fn score(frames: &[Vec<u8>], prompt: &str) -> Score {
    let objs = objects(prompt);
    let (t_len, n) = (frames.len(), objs.len());
    let mut present = vec![vec![false; n]; t_len];
    let mut shape_ok = vec![vec![false; n]; t_len];
    let mut centre = vec![vec![(f64::NAN, f64::NAN); n]; t_len];
    for (t, f) in frames.iter().enumerate() {
        assert_eq!(f.len(), SIZE * SIZE * 3, "frame {t} is not {SIZE}x{SIZE} RGB");
        for (i, (colour, shape)) in objs.iter().enumerate() {
            let rgb = COLOURS.iter().find(|(c, _)| c == colour).unwrap().1;
            let mask: Vec<bool> =
                f.chunks_exact(3).map(|p| (0..3).map(|k| (p[k] as f32 - rgb[k]).powi(2)).sum::<f32>().sqrt() < COLOUR_TOL).collect();
            let count = mask.iter().filter(|&&m| m).count();
            if count < 20 {
                continue;
            }
            let (sx, sy) = mask
                .iter()
                .enumerate()
                .filter(|(_, &m)| m)
                .fold((0.0, 0.0), |(sx, sy), (p, _)| (sx + (p % SIZE) as f64, sy + (p / SIZE) as f64));
            let (cx, cy) = (sx / count as f64, sy / count as f64);
            centre[t][i] = (cx, cy);
            present[t][i] = true;
            let (iou, s) = best_shape(&mask, cx, cy);
            shape_ok[t][i] = iou >= 0.3 && s == *shape;
        }
    }
    let found: Vec<Vec<bool>> = (0..t_len)
        .map(|t| {
            let span = t.saturating_sub(VOTE_HALF)..(t + VOTE_HALF + 1).min(t_len);
            (0..n)
                .map(|i| {
                    let votes = span.clone().filter(|&u| present[u][i]).count();
                    let ok = span.clone().filter(|&u| present[u][i] && shape_ok[u][i]).count();
                    present[t][i] && ok as f64 / votes.max(1) as f64 >= 0.5
                })
                .collect()
        })
        .collect();
    let dist = |a: (f64, f64), b: (f64, f64)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let mut teleport = vec![vec![false; n]; t_len];
    let mut frozen = vec![vec![false; n]; t_len];
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
    }
    let frames_where = |p: &dyn Fn(usize) -> bool| (0..t_len).filter(|&t| p(t)).count() as f64 / t_len.max(1) as f64;
    Score {
        found: found.iter().flatten().filter(|&&f| f).count() as f64 / (t_len * n).max(1) as f64,
        coherent: frames_where(&|t| (0..n).all(|i| found[t][i] && !teleport[t][i] && !frozen[t][i])),
        teleports: teleport.iter().flatten().filter(|&&x| x).count(),
        frozen: frames_where(&|t| frozen[t].iter().any(|&f| f)),
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
