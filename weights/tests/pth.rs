//! PyTorch zip checkpoints through the restricted unpickler: fixtures written by
//! CPython's own pickler (fixtures/make_pth.py) and archives assembled by hand here.
mod common;
use common::{zip, Pickle, Scratch};
use std::path::PathBuf;
use weights::{Checkpoint, DType, WeightsError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn open_bytes(dir: &Scratch, name: &str, bytes: &[u8]) -> weights::Result<Checkpoint> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    Checkpoint::open(&p)
}

/// `{prefix: {"model.w": tensor}}` over one float storage of `values`, with the
/// given view.
fn archive(pickle: Vec<u8>, storage: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = storage.iter().flat_map(|x| x.to_le_bytes()).collect();
    zip(&[("ck/data.pkl", &pickle), ("ck/data/0", &data), ("ck/version", b"3\n")])
}

#[test]
fn cpython_pickles_load_and_select_the_ema_generator() {
    let ck = Checkpoint::open(fixture("selfforcing.pt")).unwrap();
    assert_eq!(ck.get("generator.x").unwrap().to_f32().len(), 6);
    let g = ck.select("generator_ema").unwrap().strip_prefix("model.").unwrap();
    let a = g.get("a.weight").unwrap();
    assert_eq!((a.shape.clone(), a.dtype), (vec![2, 3], DType::F32));
    assert_eq!(a.to_f32(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let b = g.get("b").unwrap();
    assert_eq!((b.dtype, b.to_f32()), (DType::F16, vec![1.0, -2.0, 0.5, 3.0]));
    // A view at storage offset 2.
    assert_eq!(g.get("view").unwrap().to_f32(), vec![12.0, 13.0, 14.0, 15.0]);
    let e = Checkpoint::open(fixture("selfforcing.pt")).unwrap().select("critic").unwrap_err().to_string();
    assert!(e.contains("critic.*") && e.contains("generator_ema"), "{e}");
}

#[test]
fn cpython_code_pickle_is_refused_by_name() {
    match Checkpoint::open(fixture("evil.pt")) {
        Err(WeightsError::RefusedGlobal { global, .. }) => assert!(global == "posix.system" || global == "os.system", "{global}"),
        other => panic!("expected RefusedGlobal, got {other:?}"),
    }
    let e = Checkpoint::open(fixture("transposed.pt")).unwrap_err();
    assert!(matches!(&e, WeightsError::NonContiguous { key, stride, .. } if key == "w" && stride == &[1, 3]), "{e}");
    assert!(matches!(Checkpoint::open(fixture("short_storage.pt")), Err(WeightsError::Pickle { .. })));
}

#[test]
fn hand_built_state_dict_loads() {
    let dir = Scratch::new("pth-tiny");
    let p = Pickle::new()
        .op(b"}(")
        .str("generator_ema")
        .global("collections", "OrderedDict")
        .op(b")R(")
        .str("model.w")
        .tensor("FloatStorage", "0", 8, 2, &[2, 3], &[3, 1])
        .str("model.b")
        .tensor("FloatStorage", "0", 8, 0, &[2], &[1])
        .op(b"u")
        .str("step")
        .int(1200)
        .op(b"u")
        .stop();
    let values = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
    let ck = open_bytes(&dir, "tiny.pt", &archive(p, &values)).unwrap().select("generator_ema").unwrap().strip_prefix("model.").unwrap();
    assert_eq!(ck.tensors.len(), 2);
    let w = ck.get("w").unwrap();
    assert_eq!((w.shape.as_slice(), w.to_f32()), (&[2, 3][..], vec![2.0, 3.0, 4.0, 5.0, 6.0, 7.0]));
    assert_eq!(ck.get("b").unwrap().to_f32(), vec![0.0, 1.0]);
}

#[test]
fn malicious_globals_are_refused_by_name() {
    let dir = Scratch::new("pth-evil");
    let global = Pickle::new().global("os", "system").str("echo pwned").op(&[0x85]).op(b"R").stop();
    match open_bytes(&dir, "g.pt", &archive(global, &[])) {
        Err(WeightsError::RefusedGlobal { global, .. }) => assert_eq!(global, "os.system"),
        other => panic!("expected RefusedGlobal, got {other:?}"),
    }
    let stack_global = Pickle::new().str("builtins").str("eval").op(&[0x93]).stop();
    let e = open_bytes(&dir, "sg.pt", &archive(stack_global, &[])).unwrap_err().to_string();
    assert!(e.contains("refusing global builtins.eval"), "{e}");
    // An allowed global used with the wrong arguments is refused too.
    let reduce = Pickle::new().global("collections", "OrderedDict").str("x").op(&[0x85]).op(b"R").stop();
    let e = open_bytes(&dir, "r.pt", &archive(reduce, &[])).unwrap_err().to_string();
    assert!(e.contains("collections.OrderedDict called with unexpected arguments"), "{e}");
    // Opcodes that build arbitrary objects are refused by name.
    let newobj = Pickle::new().op(&[0x81]).stop();
    let e = open_bytes(&dir, "n.pt", &archive(newobj, &[])).unwrap_err().to_string();
    assert!(e.contains("opcode 0x81"), "{e}");
}

#[test]
fn bombs_and_lies_are_bounded() {
    let dir = Scratch::new("pth-bombs");
    // Lists nested 10 000 deep would overflow the stack when dropped.
    let deep = Pickle::new().op(&[b']'; 10_000]).op(&[b'a'; 9_999]).stop();
    let e = open_bytes(&dir, "deep.pt", &archive(deep, &[])).unwrap_err().to_string();
    assert!(e.contains("nest deeper than 64"), "{e}");
    // Each step appends a pair of copies of the memoized list to a new one: 2^60 elements.
    let bomb = Pickle::new().op(b"]q\x00").op(&(0..60).flat_map(|_| *b"]h\x00h\x00\x86aq\x00").collect::<Vec<_>>()).stop();
    let e = open_bytes(&dir, "bomb.pt", &archive(bomb, &[])).unwrap_err().to_string();
    assert!(e.contains("memo") || e.contains("nest deeper"), "{e}");
    // A string claiming 2^60 bytes in a tiny pickle.
    let mut huge = Pickle::new().0;
    huge.push(0x8d);
    huge.extend((1u64 << 60).to_le_bytes());
    let e = open_bytes(&dir, "huge.pt", &archive(huge, &[])).unwrap_err();
    assert!(matches!(e, WeightsError::Pickle { .. }) && e.to_string().contains("the pickle ends first"), "{e}");
    // A view reaching past its storage, and a storage missing from the archive.
    let past = Pickle::new().op(b"}").str("w").tensor("FloatStorage", "0", 8, 4, &[2, 3], &[3, 1]).op(b"s").stop();
    let e = open_bytes(&dir, "past.pt", &archive(past, &[0.0; 8])).unwrap_err().to_string();
    assert!(e.contains("exceeds its storage of 8 elements"), "{e}");
    let lying = Pickle::new().op(b"}").str("w").tensor("FloatStorage", "0", 64, 0, &[64], &[1]).op(b"s").stop();
    let e = open_bytes(&dir, "lying.pt", &archive(lying, &[0.0; 8])).unwrap_err();
    assert!(matches!(&e, WeightsError::OutOfBounds { key, limit: 32, .. } if key == "w"), "{e}");
    let gone = Pickle::new().op(b"}").str("w").tensor("FloatStorage", "7", 8, 0, &[8], &[1]).op(b"s").stop();
    let e = open_bytes(&dir, "gone.pt", &archive(gone, &[0.0; 8])).unwrap_err().to_string();
    assert!(e.contains("data/7 is not in the archive"), "{e}");
}

#[test]
fn truncated_archives_are_errors() {
    let dir = Scratch::new("pth-cut");
    let bytes = std::fs::read(fixture("selfforcing.pt")).unwrap();
    for cut in [3, 10, bytes.len() / 2, bytes.len() - 30] {
        let e = open_bytes(&dir, &format!("cut{cut}.pt"), &bytes[..cut]);
        assert!(e.is_err(), "a file cut at {cut} bytes must not load");
    }
}
