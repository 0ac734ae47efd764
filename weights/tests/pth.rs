//! PyTorch zip checkpoints through the restricted unpickler (fixtures made by
//! tests/fixtures/make_pth.py, which mimics torch.save's byte stream).
use std::path::PathBuf;
use weights::{Checkpoint, DType, WeightsError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn self_forcing_layout_loads_and_selects_the_ema_generator() {
    let ck = Checkpoint::open(fixture("selfforcing.pt")).unwrap();
    let g = ck.select("generator_ema.model").unwrap();
    let a = g.get("a.weight").unwrap();
    assert_eq!((a.shape.clone(), a.dtype), (vec![2, 3], DType::F32));
    assert_eq!(a.to_f32(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let b = g.get("b").unwrap();
    assert_eq!((b.dtype, b.to_f32()), (DType::F16, vec![1.0, -2.0, 0.5, 3.0]));
    // A view at storage offset 2.
    assert_eq!(g.get("view").unwrap().to_f32(), vec![12.0, 13.0, 14.0, 15.0]);
    assert_eq!(ck.get("generator.x").unwrap().to_f32().len(), 6);
    assert!(ck.select("generator_ema.nothing").is_err());
}

#[test]
fn code_in_a_pickle_is_refused_by_name() {
    let e = Checkpoint::open(fixture("evil.pt")).unwrap_err().to_string();
    assert!(e.contains("refusing global") && (e.contains("posix.system") || e.contains("os.system")), "{e}");
}

#[test]
fn non_contiguous_and_short_storages_are_errors() {
    let e = Checkpoint::open(fixture("transposed.pt")).unwrap_err().to_string();
    assert!(e.contains("w") && e.contains("not contiguous"), "{e}");
    let e = Checkpoint::open(fixture("short_storage.pt")).unwrap_err();
    assert!(matches!(e, WeightsError::Format { .. }), "{e}");
}

#[test]
fn truncated_archives_are_errors() {
    let bytes = std::fs::read(fixture("selfforcing.pt")).unwrap();
    let dir = std::env::temp_dir().join(format!("videossm-pth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cut in [10, bytes.len() / 2, bytes.len() - 30] {
        let p = dir.join(format!("cut{cut}.pt"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert!(Checkpoint::open(&p).is_err(), "a file cut at {cut} bytes must not load");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
