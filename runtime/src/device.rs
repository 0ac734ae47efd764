//! Adapter selection and device creation: ask for every limit and feature the
//! adapter offers (storage binding size, buffer size, workgroup storage, f16,
//! subgroups, cooperative matrices, timestamps) and record what we got, so kernels can
//! pick variants.
use crate::error::{Result, RuntimeError};
use crate::pipeline::PipelineCache;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Which backend(s) to look at: `auto` or a name; `VIDEOSSM_BACKEND` (or wgpu's
/// own `WGPU_BACKEND`) supplies it when the caller leaves it empty.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    pub backend: Option<String>,
    /// Adapter index (as listed by `videossm info`) or a case-insensitive name substring.
    pub adapter: Option<String>,
    /// Turn optional features off to exercise the fallback paths.
    pub disable_f16: bool,
    pub disable_subgroups: bool,
    pub disable_coop_matrix: bool,
    /// Cap the storage binding size below the adapter's (bytes), so the paths that split
    /// tensors over bindings — needed by full-size models on 128 MiB adapters — run on
    /// small models too.
    pub max_binding: Option<u64>,
    /// Choose kernel variants as for this kind of adapter instead of the one opened
    /// (`VIDEOSSM_KERNELS=gpu|cpu`): runs the GPU tilings on a software adapter, so the
    /// suite checks them where no GPU exists.
    pub kernels: Option<DeviceKind>,
}

impl GpuOptions {
    /// Options from `VIDEOSSM_BACKEND`, `VIDEOSSM_ADAPTER`, `VIDEOSSM_NO_F16`,
    /// `VIDEOSSM_NO_SUBGROUPS`, `VIDEOSSM_NO_COOPMAT`, `VIDEOSSM_MAX_BINDING` (bytes;
    /// ignored unless a number), `VIDEOSSM_KERNELS`.
    pub fn from_env() -> Self {
        let flag = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0");
        GpuOptions {
            backend: std::env::var("VIDEOSSM_BACKEND").ok().filter(|s| !s.is_empty()),
            adapter: std::env::var("VIDEOSSM_ADAPTER").ok().filter(|s| !s.is_empty()),
            disable_f16: flag("VIDEOSSM_NO_F16"),
            disable_subgroups: flag("VIDEOSSM_NO_SUBGROUPS"),
            disable_coop_matrix: flag("VIDEOSSM_NO_COOPMAT"),
            max_binding: std::env::var("VIDEOSSM_MAX_BINDING").ok().and_then(|v| v.parse().ok()),
            kernels: match std::env::var("VIDEOSSM_KERNELS").ok().as_deref() {
                Some("gpu") => Some(DeviceKind::Gpu),
                Some("cpu") => Some(DeviceKind::Cpu),
                _ => None,
            },
        }
    }

    fn backends(&self) -> Result<wgpu::Backends> {
        match self.backend.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("auto") => Ok(wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all())),
            Some("vulkan") | Some("vk") => Ok(wgpu::Backends::VULKAN),
            Some("metal") => Ok(wgpu::Backends::METAL),
            Some("dx12") | Some("d3d12") => Ok(wgpu::Backends::DX12),
            Some("gl") | Some("gles") | Some("opengl") => Ok(wgpu::Backends::GL),
            Some(other) => Err(RuntimeError::UnknownBackend(other.to_string())),
        }
    }
}

/// Optional capabilities that change which kernel variants we build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Capabilities {
    pub f16: bool,
    pub subgroups: bool,
    /// Subgroup size range the adapter reports (0 when subgroups are off).
    pub subgroup_min: u32,
    pub subgroup_max: u32,
    pub timestamps: bool,
    pub timestamps_in_passes: bool,
    pub device_type: DeviceKind,
    /// `max_compute_workgroup_storage_size`: bytes of workgroup memory a kernel may use.
    pub workgroup_storage: u32,
    /// The cooperative-matrix configuration the device was opened with, if any.
    pub coop_matrix: Option<CoopMatrix>,
}

/// A cooperative-matrix (matrix unit) configuration: `size`×`size`×`size` products of
/// f16 A and B into an f32 accumulator, each done by one subgroup — what NVIDIA and AMD
/// offer at 16 through Vulkan and Apple at 8 through Metal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoopMatrix {
    pub size: u32,
}

impl CoopMatrix {
    /// The largest square f16×f16→f32 configuration among `offered` (naga's WGSL has
    /// square 8×8 and 16×16 types only).
    pub fn best(offered: &[wgpu::CooperativeMatrixProperties]) -> Option<CoopMatrix> {
        use wgpu::CooperativeScalarType as T;
        offered
            .iter()
            .filter(|c| c.m_size == c.n_size && c.n_size == c.k_size && matches!(c.m_size, 8 | 16))
            .filter(|c| c.ab_type == T::F16 && c.cr_type == T::F32)
            .map(|c| CoopMatrix { size: c.m_size })
            .max_by_key(|c| c.size)
    }
}

impl Capabilities {
    /// An adapter of `device_type` without any optional feature and with WebGPU's
    /// guaranteed 16 KiB of workgroup memory: for building and planning graphs where no
    /// device is open.
    pub fn baseline(device_type: DeviceKind) -> Capabilities {
        Capabilities {
            f16: false,
            subgroups: false,
            subgroup_min: 0,
            subgroup_max: 0,
            timestamps: false,
            timestamps_in_passes: false,
            device_type,
            workgroup_storage: 16384,
            coop_matrix: None,
        }
    }
}

/// Coarse adapter class used by kernels to choose a tiling strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Software rasteriser on the host CPU (lavapipe, llvmpipe, WARP, SwiftShader).
    Cpu,
    Gpu,
}

/// One open device with its queue, limits and pipeline cache.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub caps: Capabilities,
    pub(crate) pipelines: PipelineCache,
    /// Activation buffers every graph's plan shares ([`crate::pool`]).
    pub(crate) pool: crate::pool::ActivationPool,
    /// Bytes written by the queue since its last submit: wgpu holds each write in a
    /// staging buffer until then ([`Gpu::stage`]).
    pub(crate) staged: std::sync::atomic::AtomicU64,
    /// First error wgpu reported outside an error scope; surfaced by [`Gpu::wait`].
    uncaptured: Arc<Mutex<Option<RuntimeError>>>,
    /// Why the device was lost (driver reset, GPU removed, `destroy()`), once it is.
    lost: Arc<Mutex<Option<String>>>,
    /// Bounds-checked shader modules (debug builds, tests and `VIDEOSSM_CHECKED=1`);
    /// release builds skip the per-access clamps.
    pub checked_shaders: bool,
}

/// Device memory from the driver allocator's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuMemory {
    /// Bytes of live buffers.
    pub allocated: u64,
    /// Bytes of the memory blocks they are carved from.
    pub reserved: u64,
}

/// A row of `videossm info`.
pub struct AdapterReport {
    pub index: usize,
    pub info: wgpu::AdapterInfo,
    pub features: wgpu::Features,
    pub limits: wgpu::Limits,
}

const INSTALL_HINT: &str = "Install a GPU driver with Vulkan, Metal, DX12 or OpenGL support. \
On Linux without a GPU, the software driver works: `apt-get install mesa-vulkan-drivers` (Debian/Ubuntu) \
or `dnf install mesa-vulkan-drivers` (Fedora). Pick a backend with --backend or VIDEOSSM_BACKEND.";

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

fn enumerate(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance(backends).enumerate_adapters(backends))
}

/// The adapters of `backends` in listing order (the indices `videossm info` shows):
/// Vulkan/Metal/DX12 first, then GL. GL is probed only when `with_gl`: probing it is slow
/// and noisy on headless machines, and it lacks f16 and subgroups, so it is looked at
/// when listing, when asked for, or when nothing better exists.
fn adapters(backends: wgpu::Backends, with_gl: bool) -> Vec<wgpu::Adapter> {
    let primary = backends - wgpu::Backends::GL;
    let mut list = if primary.is_empty() { Vec::new() } else { enumerate(primary) };
    if with_gl && backends.contains(wgpu::Backends::GL) {
        list.extend(enumerate(wgpu::Backends::GL));
    }
    list
}

/// Every adapter the chosen backends expose (GL included), in the order `--adapter N` counts.
pub fn list_adapters(opts: &GpuOptions) -> Result<Vec<AdapterReport>> {
    let list = adapters(opts.backends()?, true);
    Ok(list
        .iter()
        .enumerate()
        .map(|(index, a)| AdapterReport { index, info: a.get_info(), features: a.features(), limits: a.limits() })
        .collect())
}

/// The adapter `wanted` names (index in listing order, or a name substring) in `list`.
fn find<'a>(list: &'a [wgpu::Adapter], wanted: &str) -> Option<&'a wgpu::Adapter> {
    match wanted.parse::<usize>() {
        Ok(i) => list.get(i),
        Err(_) => {
            let w = wanted.to_lowercase();
            list.iter().find(|a| a.get_info().name.to_lowercase().contains(&w))
        }
    }
}

/// Higher is better when nobody asked for a specific adapter: real GPUs first,
/// then software ones; Vulkan/Metal/DX12 before GL, which lacks f16 and subgroups.
fn preference(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let backend = u8::from(info.backend != wgpu::Backend::Gl);
    (kind, backend)
}

fn describe(a: &wgpu::Adapter) -> String {
    let i = a.get_info();
    format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
}

impl Gpu {
    /// Open the adapter `opts` selects (best available when none is named).
    pub fn new(opts: &GpuOptions) -> Result<Gpu> {
        let backends = opts.backends()?;
        let mut list = adapters(backends, false);
        // GL only where the primary backends do not have what was asked for.
        let missing = match &opts.adapter {
            Some(want) => find(&list, want).is_none(),
            None => list.is_empty(),
        };
        if missing && backends.contains(wgpu::Backends::GL) {
            list = adapters(backends, true);
        }
        if list.is_empty() {
            return Err(RuntimeError::NoAdapter { backends: format!("{backends:?}"), hint: INSTALL_HINT.into() });
        }
        let adapter = match &opts.adapter {
            Some(want) => find(&list, want).ok_or_else(|| RuntimeError::AdapterNotFound {
                wanted: want.clone(),
                available: list.iter().enumerate().map(|(i, a)| format!("[{i}] {}", describe(a))).collect::<Vec<_>>().join(", "),
            })?,
            None => list.iter().max_by_key(|a| preference(&a.get_info())).expect("list is not empty"),
        };
        Self::open(adapter, opts)
    }

    fn open(adapter: &wgpu::Adapter, opts: &GpuOptions) -> Result<Gpu> {
        let info = adapter.get_info();
        let offered = adapter.features();
        let mut wanted = wgpu::Features::empty();
        if !opts.disable_f16 {
            wanted |= wgpu::Features::SHADER_F16;
        }
        if !opts.disable_subgroups {
            wanted |= wgpu::Features::SUBGROUP;
        }
        wanted |= wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let mut features = offered & wanted;
        // The matrix-unit matmul also uses f16 and subgroups, so only with both.
        let coop_matrix = (!opts.disable_coop_matrix
            && offered.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
            && features.contains(wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP))
        .then(|| CoopMatrix::best(&adapter.cooperative_matrix_properties()))
        .flatten();
        let experimental_features = if coop_matrix.is_some() {
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
            // SAFETY: wgpu asks us to accept that experimental features may have bugs. We
            // use cooperative matrices in one kernel (matmul.wgsl's COOP), in uniform
            // control flow on workgroup memory, and VIDEOSSM_NO_COOPMAT turns them off.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let mut limits = adapter.limits();
        if let Some(cap) = opts.max_binding {
            // wgpu enforces the requested limit, so a split that would overflow fails here too.
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("videossm"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| RuntimeError::RequestDevice { adapter: describe(adapter), message: e.to_string() })?;
        let subgroups = features.contains(wgpu::Features::SUBGROUP);
        let caps = Capabilities {
            f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups,
            subgroup_min: if subgroups { info.subgroup_min_size } else { 0 },
            subgroup_max: if subgroups { info.subgroup_max_size } else { 0 },
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            timestamps_in_passes: features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
            device_type: opts.kernels.unwrap_or(match info.device_type {
                wgpu::DeviceType::Cpu => DeviceKind::Cpu,
                _ => DeviceKind::Gpu,
            }),
            workgroup_storage: limits.max_compute_workgroup_storage_size,
            coop_matrix,
        };
        let uncaptured: Arc<Mutex<Option<RuntimeError>>> = Arc::default();
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let (sink, gone) = (uncaptured.clone(), lost.clone());
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            // Everything sent to a lost device fails; the loss itself is the message.
            if gone.lock().expect("lost sink poisoned").is_some() {
                return;
            }
            log::error!("{e}");
            let e = match e {
                wgpu::Error::OutOfMemory { .. } => RuntimeError::OutOfMemory { what: "submitted work".into(), bytes: None },
                e => RuntimeError::Validation { label: "submitted work".into(), message: e.to_string() },
            };
            sink.lock().expect("error sink poisoned").get_or_insert(e);
        }));
        let sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            let why = if message.is_empty() { format!("{reason:?}") } else { format!("{message} ({reason:?})") };
            log::error!("device lost: {why}");
            sink.lock().expect("lost sink poisoned").get_or_insert(why);
        });
        log::info!("opened {} on {:?} ({:?}), caps {:?}", info.name, info.backend, info.device_type, caps);
        let checked_shaders = cfg!(debug_assertions) || std::env::var("VIDEOSSM_CHECKED").is_ok_and(|v| v == "1");
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            caps,
            pipelines: PipelineCache::default(),
            pool: Default::default(),
            staged: Default::default(),
            uncaptured,
            lost,
            checked_shaders,
        })
    }

    /// Largest byte range one storage binding may cover on this device.
    pub fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    /// Alignment every storage-buffer offset must respect.
    pub fn storage_alignment(&self) -> u64 {
        self.limits.min_storage_buffer_offset_alignment as u64
    }

    /// Alignment of dynamic uniform offsets (the executor's packed params).
    pub fn uniform_alignment(&self) -> u64 {
        self.limits.min_uniform_buffer_offset_alignment as u64
    }

    /// Block until all submitted work is done; device loss becomes an error.
    /// Validation and out-of-memory errors wgpu reported since the last wait also surface here.
    pub fn wait(&self) -> Result<()> {
        let polled = self.device.poll(wgpu::PollType::wait_indefinitely());
        // A lost device explains every error after it, so it is reported first.
        self.check_lost()?;
        polled.map_err(|e| RuntimeError::DeviceLost(e.to_string()))?;
        match self.uncaptured.lock().expect("error sink poisoned").take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// [`RuntimeError::DeviceLost`] once the device is gone; nothing sent to it runs after that.
    pub fn check_lost(&self) -> Result<()> {
        match self.lost.lock().expect("lost sink poisoned").clone() {
            Some(reason) => Err(RuntimeError::DeviceLost(reason)),
            None => Ok(()),
        }
    }

    /// Device memory held for this device, where the backend reports it (Vulkan and DX12 do).
    pub fn memory(&self) -> Option<GpuMemory> {
        self.device.generate_allocator_report().map(|r| GpuMemory { allocated: r.total_allocated_bytes, reserved: r.total_reserved_bytes })
    }
}

impl fmt::Display for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:?}, {:?}, driver {} {})",
            self.info.name, self.info.backend, self.info.device_type, self.info.driver, self.info.driver_info
        )
    }
}
