//! End-to-end tests of the product on the GPU (lavapipe in CI) with a small random
//! model: the library API, every output format re-read, prompt control, snapshots,
//! interrupted runs, the errors of bad flags, and `serve` in a browser.
mod bench;
mod compare;
mod control;
mod errors;
mod faults;
mod hostile;
mod info;
mod library;
mod outputs;
mod serve;
mod support;
