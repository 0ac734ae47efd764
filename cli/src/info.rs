//! `videossm info`: every adapter with its backend, type, driver, features and limits.
use runtime::{list_adapters, GpuOptions};

pub fn run(opts: &GpuOptions) -> anyhow::Result<()> {
    let adapters = list_adapters(opts)?;
    if adapters.is_empty() {
        anyhow::bail!("no GPU adapter found. On Linux without a GPU install Mesa's software driver: `apt-get install mesa-vulkan-drivers`");
    }
    for a in adapters {
        let i = &a.info;
        println!("[{}] {}", a.index, i.name);
        println!("    backend      {:?}", i.backend);
        println!("    device type  {:?}", i.device_type);
        println!("    driver       {} {}", i.driver, i.driver_info);
        println!("    vendor/dev   {:#06x}/{:#06x}", i.vendor, i.device);
        if i.subgroup_max_size > 0 {
            println!("    subgroups    {}..{}", i.subgroup_min_size, i.subgroup_max_size);
        }
        let l = &a.limits;
        println!(
            "    limits       max_buffer_size {} B, max_storage_buffer_binding_size {} B,",
            l.max_buffer_size, l.max_storage_buffer_binding_size
        );
        println!(
            "                 workgroup storage {} B, invocations/workgroup {}, workgroups/dim {}, storage buffers/stage {}",
            l.max_compute_workgroup_storage_size,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension,
            l.max_storage_buffers_per_shader_stage
        );
        let wanted = [
            ("shader-f16", wgpu::Features::SHADER_F16),
            ("subgroups", wgpu::Features::SUBGROUP),
            ("timestamp-query", wgpu::Features::TIMESTAMP_QUERY),
            ("timestamp-inside-passes", wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
        ];
        let have: Vec<&str> = wanted.iter().filter(|(_, f)| a.features.contains(*f)).map(|(n, _)| *n).collect();
        println!("    features     {}", if have.is_empty() { "(none of f16, subgroups, timestamps)".to_string() } else { have.join(", ") });
        println!("    all features {:?}", a.features);
    }
    Ok(())
}
