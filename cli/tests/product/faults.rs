//! A GPU that disappears mid-run (the `VIDEOSSM_FAULT_AFTER_CHUNKS` hook destroys the
//! device, a genuine device loss): the run ends with a clear message, the output keeps
//! every finished chunk, and the saved state continues the video (latents-exact: the
//! copy kept every chunk leaves out the VAE caches, see `Session::snapshot_latents`).
use super::support::*;

#[test]
fn a_lost_device_keeps_the_finished_frames_and_a_resumable_state() {
    let dir = scratch("fault");
    let (file, state) = (dir.join("v.mp4"), dir.join("v.mp4.state.safetensors"));
    let mut c = generate(&["a red ball", "--frames", "45", "-q", "-o", file.to_str().unwrap()]);
    let out = c.env("VIDEOSSM_FAULT_AFTER_CHUNKS", "2").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for part in ["generating chunk 2 failed", "21 frames are in", "the GPU device was lost", "the state after chunk 1 is saved to"] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    assert!(err.contains(&format!("--resume {}", state.display())), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Chunks 0 and 1: 9 + 12 frames, in a complete file.
    assert_eq!(read_mp4(&file), (32, 32, 21));
    let saved = videossm::snapshot::load_session(&state).unwrap();
    assert_eq!((saved.chunk, saved.decoder.is_none()), (2, true));
    let more = dir.join("more.y4m");
    let out = ok(generate(&["--resume", state.to_str().unwrap(), "--frames", "24", "-q", "-o", more.to_str().unwrap()]));
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(warning.contains("the snapshot has no VAE caches"), "{warning}");
    assert_eq!(read_y4m(&std::fs::read(&more).unwrap()), (32, 32, 24));
}
