//! Slot bookkeeping for the per-block KV cache (MODEL.md A.5).
//!
//! The cache holds `capacity` tokens: the first `sink` tokens ever written stay in
//! slots `0..sink` forever; every later token goes to a ring over the remaining
//! slots. Attention is order-free over its keys (RoPE is baked into them), so a
//! ring gives exactly the official "evict the oldest non-sink tokens and move the
//! survivors up" without moving anything: the oldest non-sink tokens are the ones
//! whose slots the new chunk takes. The same slots index the memory's cached
//! gates, so the evicted slots are what the SSM scan folds in (MEMORY.md B.3).
use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub capacity: usize,
    pub sink: usize,
    /// Tokens written so far (committed chunks only).
    pub written: u64,
}

/// Where a chunk of `n` tokens goes and what it displaces. Ranges are slot ranges
/// in token order; a ring wrap splits one logical range in two.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChunkSlots {
    pub write: Vec<Range<usize>>,
    pub evict: Vec<Range<usize>>,
    /// The first evicted token, counting every token ever written: its position
    /// (frame, row, column) is what RoPE turned its cached key by.
    pub evict_token0: u64,
    /// Every valid slot once the chunk is written: the keys its queries attend to.
    pub keys: Vec<Range<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowTooSmall {
    pub capacity: usize,
    pub sink: usize,
    pub chunk: usize,
}

impl std::fmt::Display for WindowTooSmall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a cache of {} tokens with {} sink tokens cannot hold a chunk of {} tokens", self.capacity, self.sink, self.chunk)
    }
}

/// Ring positions `start .. start+len` (mod `ring`) offset by `base`, as ≤ 2 slot ranges.
fn ring_ranges(base: usize, ring: usize, start: u64, len: usize) -> Vec<Range<usize>> {
    if len == 0 {
        return Vec::new();
    }
    let s = (start % ring as u64) as usize;
    let first = len.min(ring - s);
    let mut v = vec![base + s..base + s + first];
    if first < len {
        v.push(base..base + len - first);
    }
    v
}

/// Appends `r` to `v`, merging with the last range when they touch.
fn push_merged(v: &mut Vec<Range<usize>>, r: Range<usize>) {
    if r.is_empty() {
        return;
    }
    match v.last_mut() {
        Some(last) if last.end == r.start => last.end = r.end,
        _ => v.push(r),
    }
}

impl Window {
    pub fn new(capacity: usize, sink: usize) -> Window {
        Window { capacity, sink: sink.min(capacity), written: 0 }
    }

    /// The slots of the next chunk of `n` tokens; does not commit.
    pub fn plan(&self, n: usize) -> Result<ChunkSlots, WindowTooSmall> {
        let ring = self.capacity - self.sink;
        let sink_filled = (self.written.min(self.sink as u64)) as usize;
        let to_sink = (self.sink - sink_filled).min(n);
        let to_ring = n - to_sink;
        if to_ring > ring {
            return Err(WindowTooSmall { capacity: self.capacity, sink: self.sink, chunk: n });
        }
        // Tokens already in the ring and where the next one goes.
        let ring_written = self.written.saturating_sub(self.sink as u64);
        let live = ring_written.min(ring as u64) as usize;
        let overflow = (live + to_ring).saturating_sub(ring);
        // The oldest live ring token sits at ring position ring_written - live.
        let evict = ring_ranges(self.sink, ring.max(1), ring_written - live as u64, overflow);
        let mut write = Vec::new();
        push_merged(&mut write, sink_filled..sink_filled + to_sink);
        for r in ring_ranges(self.sink, ring.max(1), ring_written, to_ring) {
            push_merged(&mut write, r);
        }
        let mut keys = Vec::new();
        push_merged(&mut keys, 0..sink_filled + to_sink);
        let kept = live + to_ring - overflow;
        for r in ring_ranges(self.sink, ring.max(1), ring_written + to_ring as u64 - kept as u64, kept) {
            push_merged(&mut keys, r);
        }
        let evict_token0 = self.sink as u64 + ring_written - live as u64;
        Ok(ChunkSlots { write, evict, evict_token0, keys })
    }

    pub fn commit(&mut self, n: usize) {
        self.written += n as u64;
    }

    fn ring(&self) -> u64 {
        (self.capacity - self.sink) as u64
    }

    /// The slot of token `g` (counting every token ever written).
    fn slot(&self, g: u64) -> usize {
        if g < self.sink as u64 {
            g as usize
        } else {
            self.sink + ((g - self.sink as u64) % self.ring().max(1)) as usize
        }
    }

    /// Whether token `g` is still cached.
    fn is_live(&self, g: u64) -> bool {
        let ring_live = self.written.saturating_sub(self.sink as u64).min(self.ring());
        g < self.written && (g < self.sink as u64 || g >= self.written - ring_live)
    }

    /// For re-running the committed chunk of tokens `g0 .. g0+n` (a prompt switch,
    /// MEMORY.md B.4): its slots, and as keys every live token up to its end, so it
    /// sees what it saw when it was made. None when part of it was evicted.
    pub fn recache(&self, g0: u64, n: usize) -> Option<ChunkSlots> {
        let end = g0 + n as u64;
        if !(g0..end).all(|g| self.is_live(g)) {
            return None;
        }
        let mut write = Vec::new();
        for g in g0..end {
            push_merged(&mut write, self.slot(g)..self.slot(g) + 1);
        }
        let ring_live = self.written.saturating_sub(self.sink as u64).min(self.ring());
        let sinks = 0..end.min(self.sink as u64);
        let window = (self.sink as u64).max(self.written - ring_live)..end;
        let mut keys = Vec::new();
        for g in sinks.chain(window) {
            push_merged(&mut keys, self.slot(g)..self.slot(g) + 1);
        }
        Some(ChunkSlots { write, evict: Vec::new(), evict_token0: 0, keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's literal procedure: a list of token ids, append, evict the oldest
    /// non-sink ones. Returns (evicted ids in order, kept ids).
    fn literal(cache: &mut Vec<u64>, next: &mut u64, n: usize, cap: usize, sink: usize) -> Vec<u64> {
        let overflow = (cache.len() + n).saturating_sub(cap);
        let keep_sinks = sink.min(cache.len());
        let evicted: Vec<u64> = cache.drain(keep_sinks..keep_sinks + overflow).collect();
        cache.extend(*next..*next + n as u64);
        *next += n as u64;
        evicted
    }

    fn ids(slots: &[Range<usize>], table: &[Option<u64>]) -> Vec<u64> {
        slots.iter().flat_map(|r| r.clone()).map(|s| table[s].expect("slot holds a token")).collect()
    }

    #[test]
    fn ring_equals_literal_eviction() {
        for &(cap, sink, n) in &[(36, 12, 12), (9, 3, 3), (10, 1, 3), (7, 0, 2), (12, 12, 0), (16, 5, 4), (24, 4, 6), (5, 2, 3)] {
            let mut w = Window::new(cap, sink);
            let mut table: Vec<Option<u64>> = vec![None; cap];
            let (mut cache, mut next) = (Vec::new(), 0u64);
            for chunk in 0..20 {
                let slots = w.plan(n).unwrap();
                let evicted_literal = literal(&mut cache, &mut next, n, cap, sink);
                assert_eq!(ids(&slots.evict, &table), evicted_literal, "cap {cap} sink {sink} n {n} chunk {chunk}: evicted");
                if let Some(&first) = evicted_literal.first() {
                    assert_eq!(slots.evict_token0, first, "cap {cap} sink {sink} n {n} chunk {chunk}: first evicted token");
                }
                let first = w.written;
                for (i, s) in slots.write.iter().flat_map(|r| r.clone()).enumerate() {
                    table[s] = Some(first + i as u64);
                }
                let mut keys = ids(&slots.keys, &table);
                keys.sort();
                assert_eq!(keys, cache, "cap {cap} sink {sink} n {n} chunk {chunk}: keys");
                w.commit(n);
            }
        }
    }

    #[test]
    fn chunk_larger_than_the_ring_is_an_error() {
        let w = Window::new(9, 3);
        assert_eq!(w.plan(3).map(|_| ()), Ok(()));
        let mut w2 = w.clone();
        w2.commit(3);
        assert!(w2.plan(7).is_err());
    }
}
