//! The GPU tilings on llvmpipe through OpenGL: wgpu's GL backend translates each shader
//! to GLSL, without f16. One case each, off the tile sizes, against the f64 references
//! (the families' own tests run there in full with `VIDEOSSM_BACKEND=gl`, which takes
//! far longer: llvmpipe compiles every variant cold).
use runtime::kernels::attention::{self, Attention, Schedule};
use runtime::kernels::conv3d::{self, Conv3d};
use runtime::kernels::matmul::{self, Act, Block, Matmul, RefArgs, Residual, Tiling};
use runtime::{DType, DeviceKind, Gpu, GpuOptions, Tensor};
use std::sync::OnceLock;
use videossm_suite::{assert_close, Rng};

/// llvmpipe's GL adapter choosing kernels as a GPU would. Debian's Mesa ships it with
/// the Vulkan drivers' dependencies; a machine without it fails here, loudly.
fn gl() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let opts = GpuOptions { backend: Some("gl".into()), kernels: Some(DeviceKind::Gpu), ..GpuOptions::from_env() };
        Gpu::new(&opts).unwrap_or_else(|e| panic!("this test needs llvmpipe's GL adapter (Mesa's libegl-mesa0): {e}"))
    })
}

fn up(gpu: &Gpu, name: &str, dtype: DType, data: &[f32]) -> Tensor {
    gpu.upload(name, &[data.len()], dtype, data).unwrap()
}

/// One test for the three families: wgpu's GL device serialises its context behind a lock
/// that gives up after a second, which long llvmpipe compiles on parallel test threads exceed.
#[test]
fn gpu_tilings_on_gl() {
    matmul_blocks_on_gl();
    tiled_attention_on_gl();
    conv3d_blocks_on_gl();
}

fn matmul_blocks_on_gl() {
    let gpu = gl();
    let mut rng = Rng::new(50);
    // K off the 16-deep stage but a multiple of 4, for the vec4 X loads.
    let (m, n, k) = (70, 130, 52);
    let p = matmul::Params::dense(m, n, k);
    let (x, w, bias, res) = (rng.normals(m * k, 1.0), rng.normals(k * n, 0.3), rng.normals(n, 0.5), rng.normals(m * n, 1.0));
    let blocks = [Block::SMALL, Block::LARGE].into_iter().filter(|b| b.workgroup_bytes() <= gpu.caps.workgroup_storage);
    for block in blocks {
        for x_vec4 in [false, true] {
            let kernel = Matmul { tiling: Tiling::Workgroup(block), x_vec4, ..Matmul::new(DType::F32, true, Act::Gelu, Residual::Add) };
            let y = gpu.empty("y", &[m * n], DType::F32).unwrap();
            let args = [
                up(gpu, "x", DType::F32, &x),
                up(gpu, "w", DType::F32, &w),
                up(gpu, "b", DType::F32, &bias),
                up(gpu, "r", DType::F32, &res),
            ];
            gpu.run(&kernel, &p, &[&args[0], &args[1], &args[2], &args[3], &y]).unwrap();
            let mut want = vec![0.0; m * n];
            let a = RefArgs { x: &x, w: &w, bias: Some(&bias), res: Some(&res), gate: None };
            matmul::reference(&kernel, &p, &a, &mut want);
            // f32 sums of K unit-scale products.
            assert_close(&kernel.to_string(), &gpu.download(&y).unwrap(), &want, 2e-6 * (k as f64).sqrt(), 2e-6 * (k as f64).sqrt());
        }
    }
}

fn tiled_attention_on_gl() {
    let gpu = gl();
    let mut rng = Rng::new(51);
    // Sinks, then a ring window that wraps; 37 queries of 3 heads (head dim 64).
    let ranges = [[0u32, 12], [30, 36], [12, 24]];
    let (tq, tk, h, d) = (37, 36, 3, 64);
    let kernel = Attention::for_device(&gpu.caps, d, false, DType::F32, DType::F32);
    assert!(matches!(kernel.schedule, Schedule::Tiled { .. }), "{kernel}");
    let p = attention::Params::dense(tq, h, d, ranges.len(), 1.0 / (d as f32).sqrt());
    let (q, k, v) = (rng.normals(tq * h * d, 1.0), rng.normals(tk * h * d, 1.0), rng.normals(tk * h * d, 1.0));
    let flat: Vec<f32> = ranges.iter().flat_map(|r| [r[0] as f32, r[1] as f32]).collect();
    let o = gpu.empty("o", &[q.len()], DType::F32).unwrap();
    let args =
        [up(gpu, "q", DType::F32, &q), up(gpu, "k", DType::F32, &k), up(gpu, "v", DType::F32, &v), up(gpu, "ranges", DType::U32, &flat)];
    gpu.run(&kernel, &p, &[&args[0], &args[1], &args[2], &args[3], &o]).unwrap();
    let mut want = vec![0.0; q.len()];
    attention::reference(&p, &q, &k, &v, &ranges, None, &mut want);
    assert_close(&kernel.to_string(), &gpu.download(&o).unwrap(), &want, 2e-5, 2e-5);
}

fn conv3d_blocks_on_gl() {
    let gpu = gl();
    let mut rng = Rng::new(52);
    let (frames, h, w, cin, cout, ks) = (2, 9, 8, 20, 70, (3, 3, 3));
    let kernel = Conv3d::for_device(&gpu.caps, DType::F32, false, true, cout);
    assert!(kernel.workgroup, "{kernel}");
    let p = conv3d::Params::new(frames, h, w, cin, cout, ks, false);
    let frame = h * w * cin;
    let n = frames * h * w * cout;
    let (cache, src) = (rng.normals(2 * frame, 1.0), rng.normals(frames * frame, 1.0));
    let (wts, bias, res) = (rng.normals(cout * cin * 27, 0.3), rng.normals(cout, 0.5), rng.normals(n, 1.0));
    let packed = conv3d::repack(&wts, cout, cin, 3, 3, 3);
    let y = gpu.empty("y", &[n], DType::F32).unwrap();
    let args = [
        up(gpu, "c", DType::F32, &cache),
        up(gpu, "s", DType::F32, &src),
        up(gpu, "w", DType::F32, &packed),
        up(gpu, "b", DType::F32, &bias),
        up(gpu, "r", DType::F32, &res),
    ];
    gpu.run(&kernel, &p, &[&args[0], &args[1], &args[2], &args[3], &args[4], &y]).unwrap();
    let want = conv3d::reference(&p, false, &cache, &src, &wts, &bias, Some(&res));
    let tol = 2e-6 * ((27 * cin) as f64).sqrt();
    assert_close(&kernel.to_string(), &gpu.download(&y).unwrap(), &want, tol, tol);
}
