//! Tier 1, no adapter needed: naga validation of every shader variant and the params
//! layouts, the tokenizer wrapper, the sprite detector, planner invariants, where the
//! f16 KV cache may be chosen.
mod kv_cache;
mod planner;
mod schedule;
mod shaders;
mod sprite_detector;
mod tokenizer_t5;
