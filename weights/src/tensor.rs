//! Host tensors: raw little-endian bytes with a dtype and shape, converted on demand.
use half::{bf16, f16};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

/// The dtypes a weight may be stored in.
pub const FLOAT: &[DType] = &[DType::F32, DType::F16, DType::BF16];

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
    }

    /// The safetensors spelling (`"F32"`, `"BF16"`, …).
    pub fn from_safetensors(name: &str) -> Option<DType> {
        NAMES.iter().find(|n| n.1 == name).map(|n| n.0)
    }

    /// The `torch.*Storage` class a `.pt` names for its storages.
    pub fn from_torch_storage(name: &str) -> Option<DType> {
        NAMES.iter().find(|n| n.2 == name).map(|n| n.0)
    }

    pub fn safetensors_name(self) -> &'static str {
        self.names().1
    }

    pub fn torch_storage(self) -> &'static str {
        self.names().2
    }

    fn names(self) -> &'static (DType, &'static str, &'static str) {
        NAMES.iter().find(|n| n.0 == self).expect("every dtype is named")
    }
}

/// Each dtype as safetensors spells it and as the `torch.*Storage` class of a `.pt`.
const NAMES: [(DType, &str, &str); 10] = [
    (DType::F64, "F64", "DoubleStorage"),
    (DType::F32, "F32", "FloatStorage"),
    (DType::F16, "F16", "HalfStorage"),
    (DType::BF16, "BF16", "BFloat16Storage"),
    (DType::I64, "I64", "LongStorage"),
    (DType::I32, "I32", "IntStorage"),
    (DType::I16, "I16", "ShortStorage"),
    (DType::I8, "I8", "CharStorage"),
    (DType::U8, "U8", "ByteStorage"),
    (DType::Bool, "BOOL", "BoolStorage"),
];

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
        })
    }
}

/// An owned tensor as read from a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

/// A borrowed tensor: a name, a shape and bytes that live elsewhere (a checkpoint,
/// a buffer read from a file), so views cost nothing to hand around.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorView<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub dtype: DType,
    pub bytes: &'a [u8],
}

impl HostTensor {
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> HostTensor {
        HostTensor { shape, dtype: DType::F32, data: bytemuck::cast_slice(values).to_vec() }
    }

    pub fn view<'a>(&'a self, name: &'a str) -> TensorView<'a> {
        TensorView { name, shape: &self.shape, dtype: self.dtype, bytes: &self.data }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn to_f32(&self) -> Vec<f32> {
        self.view("").to_f32()
    }

    /// Index of the first NaN/Inf and how many there are (integers are always finite).
    pub fn non_finite(&self) -> Option<(usize, usize)> {
        self.view("").non_finite()
    }
}

impl TensorView<'_> {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Every element as f32 (integers rounded to the nearest f32, f64 narrowed).
    pub fn to_f32(&self) -> Vec<f32> {
        fn le<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
            bytes.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect()
        }
        let b = self.bytes;
        match self.dtype {
            DType::F64 => le(b, |c| f64::from_le_bytes(c) as f32),
            DType::F32 => le(b, f32::from_le_bytes),
            DType::F16 => le(b, |c| f16::from_le_bytes(c).to_f32()),
            DType::BF16 => le(b, |c| bf16::from_le_bytes(c).to_f32()),
            DType::I64 => le(b, |c| i64::from_le_bytes(c) as f32),
            DType::I32 => le(b, |c| i32::from_le_bytes(c) as f32),
            DType::I16 => le(b, |c| i16::from_le_bytes(c) as f32),
            DType::I8 => le(b, |c: [u8; 1]| c[0] as i8 as f32),
            DType::U8 | DType::Bool => le(b, |c: [u8; 1]| c[0] as f32),
        }
    }

    /// Index of the first NaN/Inf and how many there are (integers are always finite).
    pub fn non_finite(&self) -> Option<(usize, usize)> {
        if !self.dtype.is_float() {
            return None;
        }
        let v = self.to_f32();
        let first = v.iter().position(|x| !x.is_finite())?;
        Some((first, v[first..].iter().filter(|x| !x.is_finite()).count()))
    }
}
