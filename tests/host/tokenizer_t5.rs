//! The umT5 tokenizer wrapper on the fixture tokenizer.json (tests/fixtures,
//! made by make_t5_tokenizer.py): Hugging Face's own ids for clean prompts, then
//! cleaning, any Unicode, empty and over-long prompts, and files that are not tokenizers.
use graph::models::t5::{Tokenizer, TokenizerError};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn tok(text_len: usize) -> Tokenizer {
    Tokenizer::from_file(fixture("t5_tokenizer.json"), text_len).unwrap()
}

#[test]
fn matches_hugging_face_with_truncation_and_padding() {
    let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("t5_tokenizer_cases.json")).unwrap()).unwrap();
    let t = tok(16);
    for c in cases.as_array().unwrap() {
        let prompt = c["prompt"].as_str().unwrap();
        let e = t.encode(prompt).unwrap();
        let ids: Vec<u32> = c["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let mask: Vec<u32> = c["mask"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(e.ids, ids, "{prompt:?}: ids");
        assert_eq!(e.mask, mask, "{prompt:?}: mask");
    }
}

#[test]
fn eos_last_then_padding() {
    let t = tok(32);
    assert_eq!((t.eos, t.pad), (1, 0));
    let e = t.encode("a cat sits on the mat").unwrap();
    let words: Vec<String> = e.ids[..e.len - 1].iter().map(|&i| t.inner().id_to_token(i).unwrap()).collect();
    assert_eq!(words, ["▁a", "▁cat", "▁sits", "▁on", "▁the", "▁mat"]);
    assert_eq!(e.ids[e.len - 1], t.eos);
    assert!(e.ids[e.len..].iter().all(|&i| i == t.pad));
    assert_eq!(e.mask.iter().sum::<u32>() as usize, e.len);
    assert_eq!(e.ids.len(), 32);
}

#[test]
fn empty_prompt_is_just_eos() {
    let t = tok(8);
    for p in ["", "   ", "\n\t\u{3000}"] {
        let e = t.encode(p).unwrap();
        assert_eq!(e.len, 1, "{p:?}");
        assert_eq!(e.ids, [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(e.mask, [1, 0, 0, 0, 0, 0, 0, 0]);
    }
}

#[test]
fn over_long_prompt_is_truncated_and_still_ends_with_eos() {
    let t = tok(512);
    let long = "a red car moves slowly through the city at night ".repeat(200);
    let e = t.encode(&long).unwrap();
    assert_eq!((e.len, e.ids.len()), (512, 512));
    assert_eq!(e.ids[511], t.eos);
    assert!(e.mask.iter().all(|&m| m == 1));
    // text_len 1 keeps only the EOS.
    assert_eq!(tok(1).encode("a cat").unwrap().ids, [1]);
}

#[test]
fn any_unicode_and_whitespace_cleaning() {
    let t = tok(64);
    // Unknown scripts map to <unk>, never fail; runs of whitespace do not change the tokens.
    for p in ["中文 日本語 café", "🙂🚀 Ωμέγα русский עברית", "\u{0}\u{7f}\u{feff}x", "e\u{301}", "\u{10ffff}\u{e000}"]
    {
        let e = t.encode(p).unwrap();
        assert_eq!(e.ids[e.len - 1], t.eos, "{p:?}");
    }
    assert_eq!(t.encode("  a\n\ncat \t on   the mat ").unwrap(), t.encode("a cat on the mat").unwrap());
    assert_eq!(t.encode("\u{201c}a cat\u{201d}").unwrap(), t.encode("\"a cat\"").unwrap());
    assert_eq!(t.encode("cat &amp; dog").unwrap(), t.encode("cat & dog").unwrap());
}

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("videossm-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_files_name_the_file() {
    let missing = fixture("no_such_tokenizer.json");
    let e = Tokenizer::from_file(&missing, 8).err().unwrap();
    assert!(matches!(e, TokenizerError::Io { .. }) && e.to_string().contains("no_such_tokenizer.json"), "{e}");

    let full = std::fs::read_to_string(fixture("t5_tokenizer.json")).unwrap();
    let truncated = write("truncated.json", &full[..full.len() / 2]);
    let e = Tokenizer::from_file(&truncated, 8).err().unwrap();
    assert!(matches!(e, TokenizerError::Malformed { .. }) && e.to_string().contains("truncated.json"), "{e}");

    let e = Tokenizer::from_file(write("garbage.json", "{\"model\": 3}"), 8).err().unwrap();
    assert!(matches!(e, TokenizerError::Malformed { .. }), "{e}");

    let no_eos = write("no_eos.json", &full.replace("\"</s>\"", "\"</z>\""));
    let e = Tokenizer::from_file(&no_eos, 8).err().unwrap();
    assert!(matches!(e, TokenizerError::MissingToken { role: "EOS", .. }) && e.to_string().contains("no_eos.json"), "{e}");

    let no_pad = write("no_pad.json", &full.replace("\"<pad>\"", "\"<pud>\""));
    let e = Tokenizer::from_file(&no_pad, 8).err().unwrap();
    assert!(matches!(e, TokenizerError::MissingToken { role: "padding", .. }), "{e}");

    let e = Tokenizer::from_file(fixture("t5_tokenizer.json"), 0).err().unwrap();
    assert!(matches!(e, TokenizerError::TextLen { .. }), "{e}");
}
