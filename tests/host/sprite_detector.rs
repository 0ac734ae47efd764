//! The measure of the embedded default model (issue #8): the sprite detector of
//! `tests/support/sprites.rs`, checked on drawn frames. The model itself is measured over
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
