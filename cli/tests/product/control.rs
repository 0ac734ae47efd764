//! Prompt schedules, interactive prompts, Ctrl-C and killed runs, resume from the CLI.
use super::support::*;
use std::io::{BufRead, BufReader, Write};
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

/// Resuming from the CLI continues the video pixel for pixel: the straight run's y4m is
/// the first run's followed by the resumed run's frames (its header dropped).
#[test]
fn cli_resume_continues_a_straight_run() {
    let dir = scratch("resume");
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    ok(generate(&["a red ball", "--frames", "45", "-q", "-o", &path("all.y4m")]));
    ok(generate(&["a red ball", "--frames", "21", "-q", "--save-state", &path("s.safetensors"), "-o", &path("a.y4m")]));
    ok(generate(&["--resume", &path("s.safetensors"), "--frames", "24", "-q", "-o", &path("b.y4m")]));
    let all = std::fs::read(path("all.y4m")).unwrap();
    let (a, b) = (std::fs::read(path("a.y4m")).unwrap(), std::fs::read(path("b.y4m")).unwrap());
    assert_eq!((read_y4m(&a).2, read_y4m(&b).2, read_y4m(&all).2), (21, 24, 45));
    let header = b.iter().position(|&c| c == b'\n').unwrap() + 1;
    assert!(all.starts_with(&a), "the first 21 frames differ from the straight run's");
    assert!(all[a.len()..] == b[header..], "the resumed frames differ from the straight run's");
}
