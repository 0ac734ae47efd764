//! Checkpoints written tensor by tensor (`weights::write`) read back by both readers,
//! whole and lazily, byte for byte; a lazily opened checkpoint checks each tensor for
//! NaN/Inf as it is read; a writer that fills the wrong length is refused.
mod common;
use common::Scratch;
use std::io::Write;
use weights::write::{safetensors, torch, Spec};
use weights::{Checkpoint, DType, WeightsError};

fn specs() -> Vec<Spec> {
    vec![
        Spec::new("blocks.0.attn.q.weight", DType::BF16, &[5, 3]),
        Spec::new("blocks.0.norm1.weight", DType::F32, &[7]),
        Spec::new("head.bias", DType::F16, &[2, 1, 4]),
        Spec::new("empty", DType::F32, &[0, 4]),
    ]
}

/// Byte `i` of tensor `k`: distinct everywhere, and never a NaN/Inf pattern in any dtype.
fn byte(k: usize, i: u64) -> u8 {
    ((k as u64 * 31 + i * 7) % 61) as u8
}

fn fill_all(specs: &[Spec]) -> impl FnMut(&Spec, &mut dyn Write) -> std::io::Result<()> + '_ {
    |s: &Spec, out: &mut dyn Write| {
        let k = specs.iter().position(|t| t == s).unwrap();
        out.write_all(&(0..s.bytes()).map(|i| byte(k, i)).collect::<Vec<_>>())
    }
}

fn check(ck: &Checkpoint, prefix: &str, specs: &[Spec]) {
    assert_eq!(ck.tensors.len(), specs.len());
    for (k, s) in specs.iter().enumerate() {
        let key = format!("{prefix}{}", s.key);
        let t = ck.read(&key).unwrap();
        assert_eq!((t.dtype, &t.shape), (s.dtype, &s.shape), "{key}");
        assert_eq!(t.data, (0..s.bytes()).map(|i| byte(k, i)).collect::<Vec<_>>(), "{key}");
        if s.bytes() >= 6 {
            assert_eq!(&*ck.read_bytes(&key, 2, 4).unwrap(), &t.data[2..6], "{key}");
        }
    }
}

#[test]
fn written_checkpoints_read_back_whole_and_lazily() {
    let dir = Scratch::new("write");
    let specs = specs();
    let (pt, st, nested) = (dir.join("model.pth"), dir.join("model.safetensors"), dir.join("generator.pt"));
    torch(&pt, None, &specs, &mut fill_all(&specs)).unwrap();
    safetensors(&st, &specs, &mut fill_all(&specs)).unwrap();
    torch(&nested, Some("generator"), &specs, &mut fill_all(&specs)).unwrap();
    for (path, prefix) in [(&pt, ""), (&st, ""), (&nested, "generator.")] {
        let whole = Checkpoint::open(path).unwrap();
        assert!(whole.stored.is_empty());
        check(&whole, prefix, &specs);
        let lazy = Checkpoint::open_lazy(path).unwrap();
        assert!(lazy.tensors.values().all(|t| t.data.is_empty()), "{}: nothing read yet", path.display());
        check(&lazy, prefix, &specs);
        let lazy = lazy.strip_prefix(prefix).unwrap();
        check(&lazy, "", &specs);
        let e = lazy.read_bytes("blocks.0.norm1.weight", 20, 9).unwrap_err().to_string();
        assert!(e.contains("blocks.0.norm1.weight") && e.contains("28"), "{e}");
    }
}

#[test]
fn a_lazy_checkpoint_checks_each_tensor_as_it_is_read() {
    let dir = Scratch::new("write-nan");
    let specs = vec![Spec::new("ok", DType::F32, &[3]), Spec::new("bad", DType::F32, &[4])];
    let mut fill = |s: &Spec, out: &mut dyn Write| {
        let v: Vec<f32> = if s.key == "bad" { vec![1.0, f32::NAN, 2.0, f32::INFINITY] } else { vec![1.0; 3] };
        out.write_all(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>())
    };
    let path = dir.join("nan.pth");
    torch(&path, None, &specs, &mut fill).unwrap();
    assert!(matches!(Checkpoint::open(&path).unwrap().check_finite(), Err(WeightsError::NotFinite { .. })));
    let lazy = Checkpoint::open_lazy(&path).unwrap();
    lazy.check_finite().unwrap();
    lazy.read("ok").unwrap();
    let e = lazy.read("bad").unwrap_err().to_string();
    assert!(e.contains("bad: 2 NaN/Inf values, the first at index 1"), "{e}");
}

#[test]
fn a_fill_of_the_wrong_length_is_refused_naming_the_tensor() {
    let dir = Scratch::new("write-short");
    let specs = vec![Spec::new("blocks.3.w", DType::BF16, &[4, 2])];
    let mut short = |_: &Spec, out: &mut dyn Write| out.write_all(&[0; 15]);
    for e in [
        torch(&dir.join("short.pth"), None, &specs, &mut short).unwrap_err(),
        safetensors(&dir.join("short.safetensors"), &specs, &mut short).unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(e.contains("blocks.3.w [4, 2]: 15 bytes written, expected 16"), "{e}");
    }
}
