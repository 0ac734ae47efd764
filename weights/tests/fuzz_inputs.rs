//! Every fuzz seed (`fuzz/seeds/<target>/`) and every input a fuzz run found
//! (`fuzz/regressions/<target>/`, one file per finding, fixed since) through the
//! fuzz targets' own code, on stable: none may panic.
use std::path::Path;

#[test]
fn fuzz_seeds_and_findings_run_cleanly() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut seen = 0;
    for (name, target) in weights::fuzz::TARGETS {
        for kind in ["seeds", "regressions"] {
            let Ok(dir) = std::fs::read_dir(fuzz.join(kind).join(name)) else { continue };
            for entry in dir {
                let path = entry.unwrap().path();
                target(&std::fs::read(&path).unwrap());
                seen += 1;
            }
        }
        assert!(fuzz.join("seeds").join(name).is_dir(), "fuzz target {name} has no seeds: run fuzz/seeds.py");
    }
    assert!(seen >= weights::fuzz::TARGETS.len());
}
