//! Bounds on what a checkpoint may ask of us, checked before anything is allocated.
//! Each sits far above the largest real checkpoint (umT5-XXL: 11 GB, ~240 tensors)
//! and far below what would exhaust memory or the call stack.

/// Safetensors header bytes (the same bound the `safetensors` crate uses).
pub const MAX_HEADER: u64 = 100_000_000;
/// Tensors in one checkpoint.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Size of `data.pkl`: state-dict pickles are kilobytes.
pub const MAX_PICKLE: u64 = 64 << 20;
/// Nesting of pickled containers (a Self-Forcing `.pt` nests four deep).
pub const MAX_DEPTH: usize = 64;
/// Memo slots of the unpickler.
pub const MAX_MEMO: u64 = 1 << 20;
/// Values on the unpickler's stack.
pub const MAX_STACK: u64 = 1 << 20;
/// Bytes the unpickler may copy out of its memo in total: memo references are
/// copies here, and a pickle that re-references its own memo doubles per opcode.
pub const MAX_MEMO_COPY: u64 = 64 << 20;
/// Zip entries in a `.pt` archive.
pub const MAX_ZIP_ENTRIES: u64 = 1 << 20;
/// Tensor bytes read from a `.pt` per byte of file: views may share a storage
/// (tied weights), but not so often that a small file becomes a huge allocation.
pub const MAX_SHARING: u64 = 4;

/// The tensor-count bound, shared by every checkpoint format.
pub fn check_tensor_count(path: &std::path::Path, count: usize) -> crate::error::Result<()> {
    if count as u64 > MAX_TENSORS {
        return Err(crate::error::WeightsError::LimitExceeded {
            path: path.into(),
            what: "tensor count",
            requested: count as u64,
            limit: MAX_TENSORS,
            hint: "a model has thousands of tensors at most",
        });
    }
    Ok(())
}
