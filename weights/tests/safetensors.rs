//! Bad safetensors files and indexes: each fault gets its own error naming it.
mod common;
use common::{f32s, write_st, Scratch};
use safetensors::Dtype;
use weights::{Checkpoint, DType, Expected, Problem, WeightsError};

fn expected() -> Expected {
    let mut e = Expected::default();
    e.float("a.weight", &[2, 3]);
    e.float("b", &[4]);
    e
}

#[test]
fn truncated_and_lying_files_are_refused() {
    let dir = Scratch::new("st-bad");
    let good = dir.join("good.safetensors");
    write_st(&good, &[("a.weight", vec![2, 3], Dtype::F32, f32s(&[0.5; 6])), ("b", vec![4], Dtype::F32, f32s(&[1.0; 4]))]);
    let ck = Checkpoint::open(&good).unwrap();
    ck.validate(&expected()).unwrap();
    assert_eq!(ck.get("b").unwrap().to_f32(), vec![1.0; 4]);
    let bytes = std::fs::read(&good).unwrap();

    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
    match Checkpoint::open(&cut) {
        Err(WeightsError::OutOfBounds { key, end, limit, .. }) => assert!(end > limit, "{key}: {end} vs {limit}"),
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
    std::fs::write(&cut, &bytes[..5]).unwrap();
    assert!(matches!(Checkpoint::open(&cut), Err(WeightsError::Format { .. })));

    let mut b = bytes.clone();
    b[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    std::fs::write(&cut, &b).unwrap();
    let e = Checkpoint::open(&cut).unwrap_err();
    assert!(matches!(e, WeightsError::Format { .. }) && e.to_string().contains("runs past the end"), "{e}");

    b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&cut, &b).unwrap();
    assert!(matches!(Checkpoint::open(&cut), Err(WeightsError::LimitExceeded { what: "header length", .. })));
}

/// A header written by hand: offsets the safetensors crate would never produce.
fn raw(path: &std::path::Path, header: &str, data: &[u8]) {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend(header.as_bytes());
    b.extend(data);
    std::fs::write(path, b).unwrap();
}

#[test]
fn hostile_headers_are_refused_before_allocating() {
    let dir = Scratch::new("st-hostile");
    let p = dir.join("x.safetensors");
    // The same 16 bytes named a thousand times would read 16 KB from a 16-byte section.
    let many: Vec<String> = (0..1000).map(|i| format!("\"t{i}\":{{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}")).collect();
    raw(&p, &format!("{{{}}}", many.join(",")), &[0; 16]);
    assert!(matches!(Checkpoint::open(&p), Err(WeightsError::LimitExceeded { what: "sum of tensor bytes", .. })));
    // A shape whose byte count overflows u64.
    raw(&p, r#"{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, &[0; 16]);
    assert!(matches!(Checkpoint::open(&p), Err(WeightsError::SizeMismatch { expected: u64::MAX, .. })));
    raw(&p, r#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, &[0; 16]);
    assert!(matches!(Checkpoint::open(&p), Err(WeightsError::SizeMismatch { expected: 8, got: 16, .. })));
    raw(&p, r#"{"t":{"dtype":"C64","shape":[2],"data_offsets":[0,16]}}"#, &[0; 16]);
    assert!(matches!(Checkpoint::open(&p), Err(WeightsError::UnsupportedDtype { .. })));
    raw(&p, r#"["not", "an", "object"]"#, &[]);
    assert!(matches!(Checkpoint::open(&p), Err(WeightsError::Format { .. })));
}

#[test]
fn every_mismatch_is_listed_at_once() {
    let dir = Scratch::new("st-mismatch");
    let wrong = dir.join("wrong.safetensors");
    let halves: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|x| half::bf16::from_f32(*x).to_le_bytes()).collect();
    write_st(
        &wrong,
        &[
            ("a.weight", vec![3, 2], Dtype::F32, f32s(&[0.5; 6])),
            ("c", vec![1], Dtype::F32, f32s(&[0.0])),
            ("d", vec![4], Dtype::I64, vec![0; 32]),
        ],
    );
    let mut e = expected();
    e.float("d", &[4]);
    e.push("c", &[1], &[DType::BF16]);
    match Checkpoint::open(&wrong).unwrap().validate(&e) {
        Err(WeightsError::Mismatch { problems, path }) => {
            assert_eq!(path, wrong);
            assert_eq!(problems.len(), 4, "{problems:?}");
            assert!(problems.contains(&Problem::Shape { key: "a.weight".into(), expected: vec![2, 3], got: vec![3, 2] }));
            assert!(problems.contains(&Problem::Missing { key: "b".into(), shape: vec![4] }));
            assert!(problems.contains(&Problem::DType { key: "c".into(), allowed: &[DType::BF16], got: DType::F32 }));
            assert!(problems.contains(&Problem::DType { key: "d".into(), allowed: weights::FLOAT, got: DType::I64 }));
        }
        other => panic!("expected a mismatch report, got {other:?}"),
    }
    let unexpected = dir.join("unexpected.safetensors");
    write_st(
        &unexpected,
        &[
            ("a.weight", vec![2, 3], Dtype::BF16, [halves.clone(), halves[..4].to_vec()].concat()),
            ("b", vec![4], Dtype::BF16, halves),
            ("z", vec![1], Dtype::F32, f32s(&[0.0])),
        ],
    );
    let ck = Checkpoint::open(&unexpected).unwrap();
    assert_eq!(ck.get("b").unwrap().to_f32(), vec![1.0, 2.0, 3.0, 4.0]);
    let msg = ck.validate(&expected()).unwrap_err().to_string();
    assert!(msg.contains("unexpected.safetensors") && msg.contains("unexpected z [1]") && msg.contains("(1 problems)"), "{msg}");
}

#[test]
fn non_finite_values_are_named() {
    let dir = Scratch::new("st-nan");
    let p = dir.join("nan.safetensors");
    let ids: Vec<u8> = [1i64, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
    write_st(
        &p,
        &[
            ("a.weight", vec![2, 3], Dtype::F32, f32s(&[0.0, 1.0, f32::NAN, 0.0, f32::INFINITY, 0.0])),
            ("b", vec![4], Dtype::F32, f32s(&[1.0; 4])),
            ("ids", vec![2], Dtype::I64, ids),
        ],
    );
    let ck = Checkpoint::open(&p).unwrap();
    match ck.check_finite() {
        Err(WeightsError::NotFinite { found, .. }) => {
            assert_eq!(found.len(), 1);
            assert_eq!((found[0].key.as_str(), found[0].first, found[0].count), ("a.weight", 2, 2));
        }
        other => panic!("expected NotFinite, got {other:?}"),
    }
    assert_eq!(ck.get("ids").unwrap().to_f32(), vec![1.0, 2.0]);
}

#[test]
fn sharded_index_loads_every_shard_and_refuses_bad_ones() {
    let dir = Scratch::new("st-shards");
    write_st(&dir.join("m-1.safetensors"), &[("a", vec![2], Dtype::F32, f32s(&[1.0, 2.0]))]);
    write_st(&dir.join("m-2.safetensors"), &[("b", vec![1], Dtype::F32, f32s(&[3.0])), ("a", vec![1], Dtype::F32, f32s(&[9.0]))]);
    write_st(&dir.join("m-3.safetensors"), &[("b", vec![1], Dtype::F32, f32s(&[3.0]))]);
    let index = |name: &str, map: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!(r#"{{"metadata": {{}}, "weight_map": {map}}}"#)).unwrap();
        p
    };
    let ck = Checkpoint::open(index("ok.safetensors.index.json", r#"{"a": "m-1.safetensors", "b": "m-3.safetensors"}"#)).unwrap();
    assert_eq!(ck.get("a").unwrap().to_f32(), vec![1.0, 2.0]);
    assert_eq!(ck.get("b").unwrap().to_f32(), vec![3.0]);
    let e = Checkpoint::open(index("dup.safetensors.index.json", r#"{"a": "m-1.safetensors", "b": "m-2.safetensors"}"#)).unwrap_err();
    assert!(matches!(&e, WeightsError::Duplicate { key, .. } if key == "a"), "{e}");
    let e = Checkpoint::open(index("miss.safetensors.index.json", r#"{"a": "m-3.safetensors"}"#)).unwrap_err();
    assert!(matches!(&e, WeightsError::Missing { key, .. } if key == "a"), "{e}");
    let e = Checkpoint::open(index("esc.safetensors.index.json", r#"{"a": "../m-1.safetensors"}"#)).unwrap_err();
    assert!(e.to_string().contains("not a plain file name"), "{e}");
    let e = Checkpoint::open(index("gone.safetensors.index.json", r#"{"a": "absent.safetensors"}"#)).unwrap_err();
    assert!(matches!(e, WeightsError::Io { .. }) && e.to_string().contains("absent.safetensors"), "{e}");
}
