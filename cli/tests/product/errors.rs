//! Every bad flag, path and file gets a clear error (and never a panic).
use super::support::*;

/// Runs `videossm generate` expecting failure with `want` in the message.
fn fails(args: &[&str], want: &str) {
    let out = generate(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    assert!(err.contains(want), "{args:?}: {want:?} not in:\n{err}");
}

#[test]
fn bad_values_say_the_allowed_range() {
    let dir = scratch("errors");
    let out = dir.join("v.y4m");
    let o = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["p", "--seconds", "0", "-o", o], "--seconds 0: use 0.0625..=3600"),
        (&["p", "--seconds", "nan", "-o", o], "--seconds NaN"),
        (&["p", "--seconds", "7200", "-o", o], "use 0.0625..=3600"),
        (&["p", "--frames", "0", "-o", o], "--frames 0: use 1..=57600"),
        (&["p", "--frames", "3", "--seconds", "1", "-o", o], "cannot be used with"),
        (&["p", "--window", "4", "-o", o], "at least 6 (sink < window, window ≥ sink + chunk)"),
        (&["p", "--window", "0", "-o", o], "-1 (unbounded) or a positive number"),
        (&["p", "--window", "9", "--sink", "9", "-o", o], "at least 12"),
        (&["p", "--steps", "1000,abc", "-o", o], "comma-separated timesteps in 1..=1000"),
        (&["p", "--steps", "500,750", "-o", o], "must decrease strictly"),
        (&["p", "--steps", "2000", "-o", o], "outside 1..=1000"),
        (&["p", "--size", "100x64", "-o", o], "must be a multiple of 16"),
        (&["p", "--size", "big", "-o", o], "WIDTHxHEIGHT"),
        (&["p", "--size", "0x64", "-o", o], "multiple of 16"),
        (&["p", "--seed", "-1", "-o", o], "--seed"),
        (&["p", "--dtype", "f8", "-o", o], "use f32, f16 or bf16"),
        (&["p", "--backend", "nosuch", "-o", o], "nosuch"),
        (&["p", "-o", "v.avi"], "unknown extension .avi"),
        (&["p", "-o", "/nonexistent/dir/v.mp4"], "/nonexistent/dir/v.mp4"),
        (&["p", "-o", ""], "empty path"),
        (&["-o", o], "no prompt"),
        (&["   ", "-o", o], "prompt: is empty"),
        (&["p", "--interactive", "--prompts", "x", "-o", o], "use one way"),
        (&["p", "--resume", "/nonexistent.safetensors", "-o", o], "/nonexistent.safetensors"),
        (&["p", "--save-state", "/nonexistent/s.safetensors", "-o", o], "folder /nonexistent does not exist"),
        (&["p", "--generator", "/nonexistent.pt", "-o", o], "--generator: /nonexistent.pt: no such file"),
    ];
    for (args, want) in cases {
        fails(args, want);
    }
    // A run that failed validation leaves no empty output behind, and an existing file as it was.
    assert!(!out.exists());
    std::fs::write(&out, b"keep").unwrap();
    fails(&["p", "--window", "4", "-o", o], "window");
    fails(&["p", "--sink", "7", "-o", o], "window");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
}

#[test]
fn bad_files_name_the_file_and_line() {
    let dir = scratch("bad-files");
    let o = dir.join("v.y4m");
    let o = o.to_str().unwrap();
    let write = |name: &str, text: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (write("a.txt", b"0s: a\n5s a dog\n"), "a.txt:2: \"5s a dog\": expected `TIME: prompt`"),
        (write("b.txt", b"0s: a\n3x: b\n"), "b.txt:2: \"3x\" is not a time"),
        (write("c.txt", b"0s: a\n5s: b\n4s: c\n"), "c.txt:3: 4s is not after 5s of line 2"),
        (write("d.txt", b"0s: a\n1m: \n"), "d.txt:2: the prompt is empty"),
        (write("e.txt", b"# nothing\n"), "no prompts"),
        (write("f.txt", b"\xff\xfe0s: a\n"), "not UTF-8"),
        (write("g.txt", b"5s: late\n"), "g.txt:1: the first prompt starts at 5s"),
    ];
    for (file, want) in &cases {
        fails(&["--prompts", file, "-o", o], want);
    }
    let snap = write("s.safetensors", b"not a snapshot");
    fails(&["--resume", &snap, "-o", o], "not a usable videossm snapshot");
    // A model folder without weights, and one whose config is broken.
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::copy(model_dir().join("config.json"), model.join("config.json")).unwrap();
    let run = |want: &str| {
        let out = super::support::videossm().args(["generate", "p", "-o", o, "--model", model.to_str().unwrap()]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !err.contains("panicked") && err.contains(want), "{want:?} not in:\n{err}");
    };
    run("missing model.safetensors or diffusion_pytorch_model.safetensors[.index.json]");
    std::fs::write(model.join("model.safetensors"), b"\x08\0\0\0\0\0\0\0{}      ").unwrap();
    std::fs::write(model.join("config.json"), b"{\"dim\": 64}").unwrap();
    run("config.json");
}

/// Without `--model` the embedded tiny model runs: its first chunk is 9 frames of 64×64.
#[test]
fn the_embedded_model_runs_without_model() {
    let out = super::support::videossm().args(["generate", "a red circle bouncing on black", "--frames", "9", "-o", "-"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let header = out.stdout.split(|&b| b == b'\n').next().unwrap();
    assert!(String::from_utf8_lossy(header).contains("W64 H64"), "{}", String::from_utf8_lossy(header));
    assert_eq!(out.stdout.windows(6).filter(|w| w == b"FRAME\n").count(), 9);
}

/// A full disk mid-run (an mp4 linked to /dev/full: the first fragment fails) ends
/// with the file named and the cause.
#[test]
fn full_disk_names_the_file() {
    let dir = scratch("full");
    let file = dir.join("full.mp4");
    std::os::unix::fs::symlink("/dev/full", &file).unwrap();
    fails(&["p", "--frames", "30", "-o", file.to_str().unwrap()], "writing chunk 0; 0 frames are in the file");
    fails(&["p", "--frames", "30", "-o", file.to_str().unwrap()], "full.mp4: No space left on device");
}

/// A state resumed with another window is refused with the window to use.
#[test]
fn resume_with_another_window() {
    let dir = scratch("resume-window");
    let state = dir.join("s.safetensors");
    let o = dir.join("v.y4m");
    ok(generate(&["p", "--frames", "9", "-q", "--save-state", state.to_str().unwrap(), "-o", o.to_str().unwrap()]));
    fails(
        &["--resume", state.to_str().unwrap(), "--window", "12", "-o", o.to_str().unwrap()],
        "the snapshot has a 9 frame window, this run 12: use --window 9",
    );
}

#[test]
fn inspect_reports_and_rejects() {
    let out = ok({
        let mut c = videossm();
        c.arg("inspect").arg(model_dir().join("model.safetensors"));
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dit+memory") && text.contains("matches") && text.contains("all finite"), "{text}");
    assert!(text.contains("gated_linear keys (MEMORY.md B.3); config: gated_linear"), "{text}");
    let out = videossm().args(["inspect", "/nonexistent.safetensors"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent.safetensors"));
}
