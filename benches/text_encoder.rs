//! Text-encode time per prompt: tokenizing (cleaning included) and the umT5 encoder,
//! streamed one linear at a time over the prompt's valid tokens, at the t5-small bundle's
//! config with Wan's text length of 512 tokens
//! (random weights; the fixture tokenizer), plus a whole uncached `TextEncoder` call.
use criterion::{criterion_group, criterion_main, Criterion};
use graph::models::t5::{T5Encoder, TextEncoder, Tokenizer};
use runtime::DType;
use std::path::Path;
use videossm_suite::t5::random_checkpoint;
use videossm_suite::{gpu, parity_dir};
use weights::T5Config;

const TEXT_LEN: usize = 512;
const PROMPT: &str = "a red car moves slowly through the city at night, cinematic style, golden hour light over the river";

fn bench(c: &mut Criterion) {
    let cfg = T5Config::load(&parity_dir("t5-small").join("config.json")).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/t5_tokenizer.json");
    let tokenizer = Tokenizer::from_file(&fixture, TEXT_LEN).unwrap();
    let mut encoder = T5Encoder::load(gpu().clone(), random_checkpoint(&cfg, 1), &cfg, TEXT_LEN, DType::F32).unwrap();
    let enc = tokenizer.encode(PROMPT).unwrap();
    encoder.encode(&enc.ids, &enc.mask).unwrap();
    println!("umT5 ({} layers, dim {}) over {} of {TEXT_LEN} tokens: {:?}", cfg.num_layers, cfg.dim, enc.len, encoder.stats());
    let mut group = c.benchmark_group("text_encoder");
    group.sample_size(10);
    group.bench_function("tokenize", |b| b.iter(|| tokenizer.encode(PROMPT).unwrap()));
    group.bench_function("encode_t5_small_valid_tokens", |b| b.iter(|| encoder.encode(&enc.ids, &enc.mask).unwrap()));
    let mut text = TextEncoder::new(tokenizer, encoder).unwrap();
    let mut n = 0usize;
    group.bench_function("embed_new_prompt", |b| {
        b.iter(|| {
            n += 1;
            text.embed(&format!("{PROMPT} {n}")).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
