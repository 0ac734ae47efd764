//! The suite's parity tests read the golden bundles of `../shared/parity` (recorded from
//! the official PyTorch code). Without them the suite stops here, once, with what to do,
//! instead of failing test by test. `VIDEOSSM_PARITY=DIR` points at another copy.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=VIDEOSSM_PARITY");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("VIDEOSSM_PARITY").map(PathBuf::from).unwrap_or_else(|| manifest.join("../shared/parity"));
    println!("cargo:rerun-if-changed={}", dir.display());
    if !dir.join("FORMAT.md").is_file() {
        eprintln!(
            "error: the test suite needs the parity bundles at {} (the project's shared/ folder beside this checkout, \
             or VIDEOSSM_PARITY=DIR); the library and the CLI build without them",
            dir.display()
        );
        std::process::exit(1);
    }
    println!("cargo:rustc-env=VIDEOSSM_PARITY_DIR={}", dir.canonicalize().unwrap_or(dir).display());
}
