//! Prompt schedules, interactive prompts, Ctrl-C and killed runs, resume from the CLI.
use super::support::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;

/// The prompt each chunk ran under, from the `chunk N: prompt "..."` lines.
fn prompts_per_chunk(stderr: &str) -> Vec<(usize, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("chunk ")?;
            let (n, p) = rest.split_once(": prompt ")?;
            Some((n.parse().ok()?, p.trim_matches('"').to_string()))
        })
        .collect()
}

/// Starts `c` with piped stdio, forwarding stderr lines to a channel.
fn spawn(mut c: std::process::Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a stderr line starting with `prefix`, collecting every line seen.
fn wait_for(rx: &mpsc::Receiver<String>, prefix: &str, seen: &mut Vec<String>) {
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(300)).unwrap_or_else(|_| panic!("no {prefix:?} in {seen:#?}"));
        let hit = line.starts_with(prefix);
        seen.push(line);
        if hit {
            return;
        }
    }
}

#[test]
fn prompt_schedule_switches_at_the_chunk_holding_its_time() {
    let dir = scratch("schedule");
    let file = dir.join("prompts.txt");
    // 1.5 s = frame 24, in chunk 2 (frames 21..33); 2s = frame 32, also chunk 2: the later cue wins.
    std::fs::write(&file, "# a test\n0s: a cat sits\n\n1.5s: the cat stands\n2s: the cat jumps\n3.2s: the cat lands\n").unwrap();
    let out = ok(generate(&["--prompts", file.to_str().unwrap(), "--frames", "57", "-o", dir.join("v.y4m").to_str().unwrap()]));
    let got = prompts_per_chunk(&String::from_utf8_lossy(&out.stderr));
    let want: Vec<(usize, String)> =
        [(0, "a cat sits"), (1, "a cat sits"), (2, "the cat jumps"), (3, "the cat jumps"), (4, "the cat lands")]
            .map(|(c, p)| (c, p.to_string()))
            .to_vec();
    assert_eq!(got, want);
}

#[test]
fn interactive_prompt_applies_at_a_later_chunk() {
    let dir = scratch("interactive");
    let (mut child, rx) = spawn(generate(&["a cat sits", "--interactive", "--frames", "69", "-o", dir.join("v.y4m").to_str().unwrap()]));
    let mut seen = Vec::new();
    wait_for(&rx, "chunk 1:", &mut seen);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "a dog runs").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    seen.extend(rx.iter());
    let got = prompts_per_chunk(&seen.join("\n"));
    assert_eq!(got.len(), 6, "{seen:#?}");
    assert_eq!(got[..2], [(0, "a cat sits".to_string()), (1, "a cat sits".to_string())]);
    // Read while chunk 1 ran: applied at chunk 2 or soon after, and kept to the end.
    let switch = got.iter().position(|(_, p)| p == "a dog runs").expect("the typed prompt was applied");
    assert!(switch >= 2 && got[switch..].iter().all(|(_, p)| p == "a dog runs"), "{got:?}");
}

#[test]
fn killed_run_leaves_a_playable_mp4() {
    let file = scratch("killed").join("v.mp4");
    let (mut child, rx) = spawn(generate(&["a red ball", "--frames", "600", "-o", file.to_str().unwrap()]));
    let mut seen = Vec::new();
    wait_for(&rx, "chunk 3:", &mut seen);
    child.kill().unwrap();
    child.wait().unwrap();
    let (w, h, frames) = read_mp4(&file);
    assert_eq!((w, h), (32, 32));
    // Chunks 0..=2 were written before chunk 3 started: 9 + 12 + 12 frames at least.
    assert!(frames >= 33 && (frames - 9) % 12 == 0, "{frames} frames");
}

#[test]
fn ctrl_c_stops_cleanly_and_saves_a_resumable_state() {
    let dir = scratch("ctrlc");
    let (file, state) = (dir.join("v.gif"), dir.join("state.safetensors"));
    let (mut child, rx) =
        spawn(generate(&["a red ball", "--frames", "600", "--save-state", state.to_str().unwrap(), "-o", file.to_str().unwrap()]));
    let mut seen = Vec::new();
    wait_for(&rx, "chunk 2:", &mut seen);
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success(), "{seen:#?}");
    seen.extend(rx.iter());
    let done = prompts_per_chunk(&seen.join("\n")).len();
    let (_, _, frames) = read_gif(&file);
    assert_eq!(frames, 9 + 12 * (done - 1), "{seen:#?}");
    let s = videossm::snapshot::load_session(&state).unwrap();
    assert_eq!(s.chunk, done);
    // The CLI continues from it.
    let more = dir.join("more.y4m");
    ok(generate(&["--resume", state.to_str().unwrap(), "--frames", "12", "-q", "-o", more.to_str().unwrap()]));
    assert_eq!(read_y4m(&std::fs::read(&more).unwrap()), (32, 32, 12));
}

/// Resuming from the CLI continues the video pixel for pixel at any length: the straight
/// run's y4m is the first run's followed by the resumed run's frames (header dropped), with
/// cuts on a chunk boundary (21 = 9 + 12), inside a chunk (the rest of it is held in the
/// state and delivered first), and a resume shorter than what the state holds.
#[test]
fn cli_resume_continues_a_straight_run() {
    let dir = scratch("resume");
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    ok(generate(&["a red ball", "--frames", "45", "-q", "-o", &path("all.y4m")]));
    let all = std::fs::read(path("all.y4m")).unwrap();
    let header = all.iter().position(|&c| c == b'\n').unwrap() + 1;
    let frame = (all.len() - header) / 45;
    for (first, second) in [(21, 24), (5, 6), (16, 29), (10, 3)] {
        let (a, b, s) = (path(&format!("a{first}.y4m")), path(&format!("b{first}.y4m")), path(&format!("s{first}.safetensors")));
        ok(generate(&["a red ball", "--frames", &first.to_string(), "-q", "--save-state", &s, "-o", &a]));
        ok(generate(&["--resume", &s, "--frames", &second.to_string(), "-q", "-o", &b]));
        let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!((read_y4m(&a).2, read_y4m(&b).2), (first, second));
        assert!(all[..header + first * frame] == a[..], "{first} + {second}: the first run differs from the straight one");
        let straight = &all[header + first * frame..header + (first + second) * frame];
        assert!(straight == &b[header..], "{first} + {second}: the resumed frames differ from the straight run's");
    }
}

/// The seam holds for every output: PNG folders pixel for pixel; MP4, GIF and y4m on
/// stdout frame for frame in count (MP4 and GIF encode lossily, each file on its own).
#[test]
fn cli_resume_loses_no_frame_in_any_format() {
    let dir = scratch("resume-formats");
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    ok(generate(&["a red ball", "--frames", "14", "-q", "-o", &path("all")]));
    let png = |d: &str, i: usize| std::fs::read(Path::new(d).join(format!("frame_{i:06}.png"))).unwrap();
    ok(generate(&["a red ball", "--frames", "5", "-q", "--save-state", &path("s.safetensors"), "-o", &path("a")]));
    ok(generate(&["--resume", &path("s.safetensors"), "--frames", "9", "-q", "-o", &path("b")]));
    assert_eq!((read_pngs(Path::new(&path("a"))).2, read_pngs(Path::new(&path("b"))).2), (5, 9));
    for i in 0..14 {
        let (d, j) = if i < 5 { (path("a"), i) } else { (path("b"), i - 5) };
        assert!(png(&path("all"), i) == png(&d, j), "PNG frame {i} differs from the straight run's");
    }
    for ext in ["mp4", "gif"] {
        let (a, b, s) = (path(&format!("a.{ext}")), path(&format!("b.{ext}")), path(&format!("s.{ext}.safetensors")));
        ok(generate(&["a red ball", "--frames", "5", "-q", "--save-state", &s, "-o", &a]));
        ok(generate(&["--resume", &s, "--frames", "9", "-q", "-o", &b]));
        let count = |f: &str| if ext == "mp4" { read_mp4(Path::new(f)).2 } else { read_gif(Path::new(f)).2 };
        assert_eq!((count(&a), count(&b)), (5, 9), "{ext}");
    }
    // On stdout the same bytes as in a file; both start with the 4 frames the state held.
    ok(generate(&["--resume", &path("s.safetensors"), "--frames", "9", "-q", "-o", &path("b.y4m")]));
    let out = ok(generate(&["--resume", &path("s.safetensors"), "--frames", "9", "-q", "-o", "-"]));
    assert_eq!(read_y4m(&out.stdout).2, 9);
    assert!(out.stdout == std::fs::read(path("b.y4m")).unwrap(), "y4m on stdout differs from the file");
}
