//! Tier 1: every shader variant the models use parses and validates with naga (no adapter needed).
#[test]
fn every_variant_validates() {
    let variants = runtime::kernels::all_variants();
    assert!(!variants.is_empty());
    let failures: Vec<String> = variants.iter().filter_map(|(label, wgsl)| runtime::shader::validate(label, wgsl).err()).collect();
    assert!(failures.is_empty(), "{} of {} variants fail naga validation:\n{}", failures.len(), variants.len(), failures.join("\n"));
}
