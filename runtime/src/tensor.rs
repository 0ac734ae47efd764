//! Tensors on the device: a shape, a dtype and a byte range of a buffer.
//! f16 and bf16 are stored two per u32 and unpacked in the shaders, so they work
//! on adapters without `shader-f16`.
use crate::device::Gpu;
use crate::error::{Result, RuntimeError};
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    U32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Bytes a storage binding of `numel` elements needs (rounded up to whole u32 words).
    pub fn storage_bytes(self, numel: usize) -> u64 {
        ((numel * self.size()).div_ceil(4) * 4) as u64
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::U32 => "u32",
        }
    }

    /// Host encoding of f32 values in this dtype, padded to whole u32 words.
    pub fn encode(self, data: &[f32]) -> Vec<u8> {
        let mut out: Vec<u8> = match self {
            DType::F32 => bytemuck::cast_slice(data).to_vec(),
            DType::F16 => data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            DType::BF16 => data.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            DType::U32 => data.iter().flat_map(|&v| (v as u32).to_le_bytes()).collect(),
        };
        out.resize(out.len().div_ceil(4) * 4, 0);
        out
    }

    /// Inverse of [`encode`](Self::encode) for `numel` elements.
    pub fn decode(self, bytes: &[u8], numel: usize) -> Vec<f32> {
        match self {
            DType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[..numel * 4]),
            DType::U32 => bytemuck::pod_collect_to_vec::<u8, u32>(&bytes[..numel * 4]).into_iter().map(|v| v as f32).collect(),
            DType::F16 => bytes[..numel * 2].chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            DType::BF16 => bytes[..numel * 2].chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        }
    }

    /// The value a round trip through this dtype gives (what the GPU will see).
    pub fn round(self, v: f32) -> f32 {
        match self {
            DType::F32 => v,
            DType::F16 => half::f16::from_f32(v).to_f32(),
            DType::BF16 => half::bf16::from_f32(v).to_f32(),
            DType::U32 => (v as u32) as f32,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A view of a device buffer as a typed, shaped tensor.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub buffer: Arc<wgpu::Buffer>,
    /// Byte offset into `buffer`; a multiple of the adapter's storage alignment.
    pub offset: u64,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

/// Queue writes held in staging before they are submitted ([`Gpu::upload`]).
pub const STAGED_BYTES: u64 = 64 << 20;

pub const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl Tensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn bytes(&self) -> u64 {
        self.dtype.storage_bytes(self.numel())
    }

    /// The binding that covers this tensor.
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.bytes().max(4)),
        })
    }

    /// A tensor of the same storage, seen with another shape of the same size.
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        assert_eq!(shape.iter().product::<usize>(), self.numel(), "reshape {:?} -> {:?}", self.shape, shape);
        Tensor { shape: shape.to_vec(), ..self.clone() }
    }
}

impl Gpu {
    /// A new buffer, checked against the adapter's buffer-size limit.
    pub fn create_buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<Arc<wgpu::Buffer>> {
        let limit = self.limits.max_buffer_size;
        if bytes > limit {
            return Err(RuntimeError::LimitExceeded {
                what: format!("buffer {label}"),
                requested: bytes,
                limit,
                hint: "split the tensor or choose an adapter with a larger max_buffer_size".into(),
            });
        }
        self.check_lost()?;
        // Allocation failure is reported here, naming the buffer, not later as a lost submit.
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).div_ceil(4) * 4,
            usage,
            mapped_at_creation: false,
        });
        if pollster::block_on(scope.pop()).is_some() {
            return Err(RuntimeError::OutOfMemory { what: format!("buffer {label}"), bytes: Some(bytes) });
        }
        Ok(Arc::new(buffer))
    }

    /// Checks that one storage binding of `bytes` fits this adapter.
    pub fn check_binding(&self, label: &str, bytes: u64) -> Result<()> {
        if bytes > self.max_binding() {
            return Err(RuntimeError::LimitExceeded {
                what: format!("storage binding {label}"),
                requested: bytes,
                limit: self.max_binding(),
                hint: "the tensor must be split across bindings for this adapter".into(),
            });
        }
        Ok(())
    }

    /// An uninitialised (zeroed) tensor in its own buffer.
    pub fn empty(&self, label: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = dtype.storage_bytes(shape.iter().product());
        self.check_binding(label, bytes)?;
        Ok(Tensor { buffer: self.create_buffer(label, bytes, STORAGE)?, offset: 0, shape: shape.to_vec(), dtype })
    }

    /// Uploads f32 host data, converted to `dtype`.
    pub fn upload(&self, label: &str, shape: &[usize], dtype: DType, data: &[f32]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(RuntimeError::Tensor {
                label: label.into(),
                message: format!("shape {shape:?} needs {numel} values, got {}", data.len()),
            });
        }
        let t = self.empty(label, shape, dtype)?;
        self.stage(&t, &dtype.encode(data))?;
        Ok(t)
    }

    /// Uploads 16-bit host values already in `dtype`'s encoding (f16 or bf16 bits, as a
    /// checkpoint stores them): no conversion through f32.
    pub fn upload_bits(&self, label: &str, shape: &[usize], dtype: DType, bits: &[u16]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != bits.len() || dtype.size() != 2 {
            return Err(RuntimeError::Tensor {
                label: label.into(),
                message: format!("shape {shape:?} in {dtype} needs {numel} values of its own size, got {} 16-bit values", bits.len()),
            });
        }
        let t = self.empty(label, shape, dtype)?;
        let bytes: &[u8] = bytemuck::cast_slice(bits);
        if bytes.len() % 4 == 0 {
            self.stage(&t, bytes)?;
        } else {
            // Queue writes are whole u32 words: an odd count is padded with one zero value.
            self.stage(&t, &[bytes, &[0, 0]].concat())?;
        }
        Ok(t)
    }

    /// Writes `bytes` into `t` through the queue. wgpu keeps each write in a staging
    /// buffer until the next submit, so loading a model would briefly hold it twice:
    /// past [`STAGED_BYTES`] the writes are submitted and their staging freed.
    fn stage(&self, t: &Tensor, bytes: &[u8]) -> Result<()> {
        use std::sync::atomic::Ordering;
        self.queue.write_buffer(&t.buffer, t.offset, bytes);
        if self.staged.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64 > STAGED_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Submits the queue's pending writes and waits: their staging buffers, and any
    /// buffer dropped since the last poll, are freed.
    pub fn flush(&self) -> Result<()> {
        self.staged.store(0, std::sync::atomic::Ordering::Relaxed);
        self.queue.submit([]);
        self.wait()
    }

    /// Overwrites a tensor's contents with f32 host data.
    pub fn write(&self, t: &Tensor, data: &[f32]) -> Result<()> {
        if t.numel() != data.len() {
            return Err(RuntimeError::Tensor {
                label: "write".into(),
                message: format!("tensor {:?} holds {} values, got {}", t.shape, t.numel(), data.len()),
            });
        }
        self.stage(t, &t.dtype.encode(data))
    }

    /// Reads a tensor back as f32 (blocking).
    pub fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes("tensor", &t.buffer, t.offset, t.bytes())?;
        Ok(t.dtype.decode(&bytes, t.numel()))
    }

    /// Reads a byte range of a buffer back to the host (blocking).
    pub fn read_bytes(&self, label: &str, buffer: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.create_buffer("readback", bytes, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)?;
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes.div_ceil(4) * 4);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| RuntimeError::Readback { label: label.into(), message: e.to_string() })?
            .map_err(|e| RuntimeError::Readback { label: label.into(), message: e.to_string() })?;
        let data = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| RuntimeError::Readback { label: label.into(), message: e.to_string() })?
            .to_vec();
        staging.unmap();
        Ok(data[..bytes as usize].to_vec())
    }
}
