//! Activation buffers shared by every graph of a device. A graph's run is one submit
//! and leaves nothing in its activations that a later run reads (what carries over is
//! state, inputs and outputs, which have buffers of their own), and the queue runs
//! submits in order, so buffer `i` of one graph's plan can be buffer `i` of every other
//! graph's: the device then holds the activations of its largest graph, not the sum of
//! all of them (the DiT's passes, each VAE chunk length, each umT5 layer).
use crate::device::Gpu;
use crate::error::Result;
use std::sync::{Arc, Mutex, Weak};

/// Slot `i`: the live buffer graphs share as their plan's buffer `i`. Slots hold weak
/// references: a buffer goes when the last graph holding it does.
#[derive(Default)]
pub struct ActivationPool {
    slots: Mutex<Vec<Weak<wgpu::Buffer>>>,
}

impl Gpu {
    /// Buffers of at least `sizes[i]` bytes for a plan: slot `i`'s live buffer where it
    /// is large enough, else a new one that takes the slot (graphs holding the old one
    /// keep it: holding the result of this call for a larger graph compiled later, before
    /// the smaller graphs are compiled, keeps them from being left with outgrown buffers).
    pub fn pooled_activations(&self, sizes: &[u64]) -> Result<Vec<Arc<wgpu::Buffer>>> {
        let mut slots = self.pool.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() < sizes.len() {
            slots.resize(sizes.len(), Weak::new());
        }
        sizes
            .iter()
            .zip(slots.iter_mut())
            .enumerate()
            .map(|(i, (&bytes, slot))| match slot.upgrade().filter(|b| b.size() >= bytes) {
                Some(b) => Ok(b),
                None => {
                    let b = self.create_buffer(&format!("activations{i}"), bytes, crate::tensor::STORAGE)?;
                    *slot = Arc::downgrade(&b);
                    Ok(b)
                }
            })
            .collect()
    }

    /// Bytes of the live shared activation buffers.
    pub fn pooled_bytes(&self) -> u64 {
        let slots = self.pool.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.iter().filter_map(Weak::upgrade).map(|b| b.size()).sum()
    }
}
