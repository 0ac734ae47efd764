//! The measure of the embedded default model (issues #8, #27): the sprite detector of
//! `tests/support/sprites.rs` and its memory measure `kept`, checked on drawn frames (the
//! world itself and its recoloured control: `eval.py --ground-truth`). The model itself is measured over
//! a full minute, with the memory off and with a shorter window, by
//! `cargo bench --bench embedded_minute`.
use videossm_suite::sprites::{draw, score};

const BLACK: [u8; 3] = [0, 0, 0];

fn moving(prompt_sprites: &[(&str, &str)], frames: usize, step: f64) -> Vec<Vec<u8>> {
    (0..frames)
        .map(|t| {
            // inside the frame for 40 frames: x <= 14 + 24 + 16, y <= 20 + 12
            let (dx, dy) = (0.4 * step * t as f64, 0.3 * step * t as f64);
            let s: Vec<_> = prompt_sprites.iter().enumerate().map(|(i, &(c, k))| (c, k, 14.0 + 24.0 * i as f64 + dx, 20.0 + dy)).collect();
            draw(BLACK, &s)
        })
        .collect()
}

#[test]
fn detector_finds_drawn_sprites_and_rejects_wrong_ones() {
    let two = [("red", "circle"), ("blue", "square")];
    let ok = score(&moving(&two, 40, 1.0), "a red circle and a blue square bouncing on black");
    assert_eq!((ok.found, ok.coherent, ok.teleports), (1.0, 1.0, 0), "{ok:?}");
    let wrong_shape = score(&moving(&two, 40, 1.0), "a red square and a blue square bouncing on black");
    assert_eq!(wrong_shape.found, 0.5, "the red circle is not a red square: {wrong_shape:?}");
    let empty = score(&vec![draw(BLACK, &[]); 20], "a red circle bouncing on black");
    assert_eq!((empty.found, empty.coherent), (0.0, 0.0));
    let still = score(&moving(&two, 40, 0.0), "a red circle and a blue square bouncing on black");
    assert_eq!((still.found, still.frozen, still.coherent), (1.0, 1.0, 0.0), "{still:?}");
    let mut jumpy = moving(&two[..1], 20, 1.0);
    jumpy[10] = draw(BLACK, &[("red", "circle", 50.0, 50.0)]);
    let j = score(&jumpy, "a red circle bouncing on black");
    assert_eq!(j.teleports, 2, "{j:?}");
}

#[test]
fn detector_finds_sprites_of_unnamed_colours_by_shape() {
    let two = [("green", "square"), ("orange", "circle")];
    let ok = score(&moving(&two, 40, 1.0), "a circle and a square bouncing on black");
    assert_eq!((ok.found, ok.coherent, ok.returns), (1.0, 1.0, 0), "{ok:?}");
    let wrong = score(&moving(&two, 40, 1.0), "a triangle bouncing on black");
    assert_eq!(wrong.found, 0.0, "no triangle in the frames: {wrong:?}");
    let named = score(&moving(&two, 40, 1.0), "a orange circle and a square bouncing on black");
    assert_eq!(named.found, 1.0, "{named:?}");
    let named_wrong = score(&moving(&two, 40, 1.0), "a green circle and a square bouncing on black");
    assert_eq!(named_wrong.found, 0.0, "green is the square's colour, and a colour named for one object is not another's: {named_wrong:?}");
}

/// A sprite seen for 20 frames, out of view for `gap`, back for 20 in `back_colour`.
fn away_and_back(gap: usize, back_colour: &str) -> Vec<Vec<u8>> {
    let at = |colour, t: usize| draw(BLACK, &[(colour, "triangle", 20.0 + 0.5 * t as f64, 32.0)]);
    let mut frames: Vec<_> = (0..20).map(|t| at("cyan", t)).collect();
    frames.extend((0..gap).map(|_| draw(BLACK, &[])));
    frames.extend((0..20).map(|t| at(back_colour, t)));
    frames
}

#[test]
fn kept_counts_returns_after_the_window_in_their_first_colour() {
    let prompt = "a triangle bouncing on black";
    let same = score(&away_and_back(50, "cyan"), prompt);
    assert_eq!((same.returns, same.kept()), (1, Some(1.0)), "{same:?}");
    let other = score(&away_and_back(50, "magenta"), prompt);
    assert_eq!((other.returns, other.kept()), (1, Some(0.0)), "{other:?}");
    let brief = score(&away_and_back(30, "magenta"), prompt);
    assert_eq!((brief.returns, brief.kept()), (0, None), "a gap inside the window is no return: {brief:?}");
}
