//! Tier 2: every kernel family against its f64 CPU reference (shapes below, on and off
//! the tile sizes, grids folded past 65535 workgroups), and the graph executor.
mod attention;
mod conv3d;
mod copy;
mod elementwise;
mod gl;
mod graph_executor;
mod matmul;
mod norm;
mod peak;
mod rope;
mod ssm_scan;
