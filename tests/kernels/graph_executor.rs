//! The static graph executor: planning, replay, debug readback and limits.
use graph::{Builder, CompileOptions, GraphError};
use runtime::kernels::copy;
use runtime::kernels::elementwise::{self, Op};
use runtime::DType;
use videossm_suite::{assert_close, gpu, Rng};

/// y = gelu(silu(x + b) · w) + x, as a chain of ops with branching lifetimes.
fn build(alpha: f32, x: &[f32], b: &[f32], w: &[f32]) -> Builder {
    let gpu = gpu();
    let mut g = Builder::new(gpu.caps);
    let tx = g.input("x", &[x.len()], DType::F32);
    let tb = g.param("b", &gpu.upload("b", &[b.len()], DType::F32, b).unwrap());
    let tw = g.param("w", &gpu.upload("w", &[w.len()], DType::F32, w).unwrap());
    let h = g.add("h", tx, tb, alpha).unwrap();
    let h = g.silu("h.silu", h).unwrap();
    let h = g.mul("h.w", h, tw).unwrap();
    let h = g.gelu("h.gelu", h).unwrap();
    let y = g.add("y", h, tx, 1.0).unwrap();
    g.output(y, "y");
    g
}

fn reference(alpha: f32, x: &[f32], b: &[f32], w: &[f32]) -> Vec<f32> {
    let h = elementwise::reference(Op::Add, x, b, alpha);
    let h = elementwise::reference(Op::Silu, &h, &h, 1.0);
    let h = elementwise::reference(Op::Mul, &h, w, 1.0);
    let h = elementwise::reference(Op::Gelu, &h, &h, 1.0);
    elementwise::reference(Op::Add, &h, x, 1.0)
}

#[test]
fn chain_matches_reference_with_and_without_reuse() {
    let gpu = gpu();
    let mut rng = Rng::new(7);
    let (x, b, w) = (rng.normals(3000, 1.0), rng.normals(3000, 1.0), rng.normals(3000, 1.0));
    let want = reference(0.5, &x, &b, &w);
    let mut results = Vec::new();
    for reuse in [true, false] {
        let mut c = build(0.5, &x, &b, &w).compile(gpu, CompileOptions { reuse, ..Default::default() }).unwrap();
        c.plan().verify(c.graph());
        c.write(gpu, "x", &x).unwrap();
        c.run(gpu).unwrap();
        let got = c.read(gpu, "y").unwrap();
        assert_close(&format!("reuse={reuse}"), &got, &want, 1e-5, 1e-5);
        let r = c.report();
        assert_eq!((r.ops, r.dispatches), (5, 5));
        if reuse {
            // Four activations with chained lifetimes fit in two buffers.
            assert!(r.planned_activation_bytes * 2 <= r.naive_activation_bytes, "{r}");
        } else {
            assert_eq!(r.planned_activation_bytes, r.naive_activation_bytes);
        }
        results.push(got);
    }
    assert_eq!(results[0], results[1], "reuse must not change a single bit");
}

#[test]
fn replay_with_new_params_equals_fresh_build() {
    let gpu = gpu();
    let mut rng = Rng::new(8);
    let (x, b, w) = (rng.normals(500, 1.0), rng.normals(500, 1.0), rng.normals(500, 1.0));
    let mut c = build(0.5, &x, &b, &w).compile(gpu, CompileOptions::default()).unwrap();
    c.write(gpu, "x", &x).unwrap();
    c.run(gpu).unwrap();
    c.set_params(0, &elementwise::Params::new(500, 500, -2.0)).unwrap();
    c.run(gpu).unwrap();
    let replayed = c.read(gpu, "y").unwrap();
    let mut fresh = build(-2.0, &x, &b, &w).compile(gpu, CompileOptions::default()).unwrap();
    fresh.write(gpu, "x", &x).unwrap();
    fresh.run(gpu).unwrap();
    assert_eq!(replayed, fresh.read(gpu, "y").unwrap());
}

#[test]
fn debug_run_reads_every_op_by_label() {
    let gpu = gpu();
    let mut rng = Rng::new(9);
    let (x, b, w) = (rng.normals(100, 1.0), rng.normals(100, 1.0), rng.normals(100, 1.0));
    let mut c = build(1.0, &x, &b, &w).compile(gpu, CompileOptions::default()).unwrap();
    c.write(gpu, "x", &x).unwrap();
    let steps = c.run_debug(gpu).unwrap();
    let labels: Vec<&str> = steps.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["h", "h.silu", "h.w", "h.gelu", "y"]);
    assert_close("h", &steps[0].1, &elementwise::reference(Op::Add, &x, &b, 1.0), 1e-6, 1e-6);
    assert_close("y", &steps[4].1, &reference(1.0, &x, &b, &w), 1e-5, 1e-5);
}

#[test]
fn over_the_binding_limit_fails_at_compile_time() {
    let gpu = gpu();
    let n = (gpu.max_binding() / 4 + 1) as usize;
    let mut g = Builder::new(gpu.caps);
    let x = g.input("x", &[n], DType::F32);
    let y = g.silu("huge", x).unwrap();
    g.output(y, "y");
    match g.compile(gpu, CompileOptions::default()) {
        Err(GraphError::Runtime(runtime::RuntimeError::LimitExceeded { what, limit, .. })) => {
            assert!(what.contains('x') || what.contains("huge"), "{what}");
            assert_eq!(limit, gpu.max_binding());
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a {n}-element tensor must not compile on this adapter"),
    }
}

#[test]
fn wrong_argument_count_is_a_build_error() {
    let mut g = Builder::new(gpu().caps);
    let x = g.input("x", &[4], DType::F32);
    let e = g.dispatch("bad", elementwise::Elementwise { op: Op::Add }, &elementwise::Params::new(4, 4, 1.0), &[x, x]).unwrap_err();
    assert!(e.to_string().contains("bad"), "{e}");
}

/// A kernel's own bounds check runs when the graph is compiled (in release builds too,
/// whose shader modules are unclamped), and the runtime's typed error reaches the caller
/// with the op's label.
#[test]
fn out_of_range_op_is_a_typed_compile_error() {
    let gpu = gpu();
    let mut g = Builder::new(gpu.caps);
    let x = g.input("x", &[4, 8], DType::F32);
    let y = g.input("y", &[4, 8], DType::F32);
    // Five rows of eight from a four-row tensor.
    g.dispatch("rows", copy::Copy::F32, &copy::Params::rows(5, 8, 0, 0), &[x, y]).unwrap();
    g.output(y, "y");
    match g.compile(gpu, CompileOptions::default()) {
        Err(GraphError::Op { op, source: runtime::RuntimeError::Tensor { message, .. } }) => {
            assert_eq!(op, "rows");
            assert!(message.contains("32-element source"), "{message}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a copy past its source compiled"),
    }
}
