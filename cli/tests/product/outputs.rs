//! Every output format written by `videossm generate` and read back: frame count and size.
use super::support::*;

/// 30 frames = chunks of 9 + 12 + 12 frames, the last one cut to fit.
const FRAMES: &str = "30";

#[test]
fn y4m_file_and_stdout() {
    let dir = scratch("y4m");
    let file = dir.join("out.y4m");
    ok(generate(&["a red ball", "--frames", FRAMES, "-q", "-o", file.to_str().unwrap()]));
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(read_y4m(&bytes), (32, 32, 30));
    // The same video streamed to stdout, byte for byte.
    let out = ok(generate(&["a red ball", "--frames", FRAMES, "-q", "-o", "-"]));
    assert_eq!(out.stdout, bytes);
}

#[test]
fn png_folder() {
    let dir = scratch("png").join("frames");
    ok(generate(&["a red ball", "--frames", FRAMES, "-q", "-o", &format!("{}/", dir.display())]));
    assert_eq!(read_pngs(&dir), (32, 32, 30));
}

#[test]
fn gif_file() {
    let file = scratch("gif").join("out.gif");
    ok(generate(&["a red ball", "--frames", FRAMES, "-q", "-o", file.to_str().unwrap()]));
    assert_eq!(read_gif(&file), (32, 32, 30));
}

#[test]
fn mp4_file_decodes() {
    let file = scratch("mp4").join("out.mp4");
    ok(generate(&["a red ball", "--frames", FRAMES, "-q", "-o", file.to_str().unwrap()]));
    assert_eq!(read_mp4(&file), (32, 32, 30));
}

#[test]
fn size_override() {
    let file = scratch("size").join("out.y4m");
    ok(generate(&["a red ball", "--frames", "9", "--size", "48x16", "-q", "-o", file.to_str().unwrap()]));
    assert_eq!(read_y4m(&std::fs::read(&file).unwrap()), (48, 16, 9));
}

/// A player that closes the pipe early ends the run cleanly.
#[test]
fn closed_stdout_stops_cleanly() {
    use std::io::Read;
    let mut c = generate(&["a red ball", "--frames", "600", "-o", "-"]);
    let mut child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = vec![0; 4096];
    out.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"YUV4MPEG2 "));
    drop(out);
    let result = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success() && err.contains("stdout was closed"), "{err}");
}
