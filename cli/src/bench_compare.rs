//! `videossm bench --compare A.json B.json ...`: the `bench --json` objects of several
//! machines side by side as one Markdown table, with each figure's ratio to the first
//! file's (higher throughput or lower time reads as > 1×, "faster than the first").
use crate::error::{invalid, io, Result};
use serde_json::Value;
use std::path::Path;

/// One row: a label, each run's figure, and whether higher is better (`None`: a share,
/// not a speed, so no ratio).
struct Row {
    label: String,
    values: Vec<Option<f64>>,
    higher_is_better: Option<bool>,
    unit: &'static str,
}

/// Reads `bench --json` files, refusing any that is not one.
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Vec<Value>> {
    paths
        .iter()
        .map(|p| {
            let p = p.as_ref();
            let text = std::fs::read_to_string(p).map_err(io(p))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| invalid(p.display().to_string(), format!("not JSON: {e}")))?;
            let not_bench =
                |what: &str| invalid(p.display().to_string(), format!("{what}: not the output of `videossm bench [--full] --json`"));
            if v.get("adapter").is_none() {
                return Err(not_bench("no \"adapter\""));
            }
            if v.get("generation").is_none() && v.get("full").is_none() {
                return Err(not_bench("neither \"generation\" nor \"full\""));
            }
            Ok(v)
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// Chunk times after the first (which includes the pipeline compiles).
fn steady_chunks(g: &Value) -> Vec<f64> {
    g["chunk_ms"].as_array().map(|a| a.iter().skip(1).filter_map(Value::as_f64).collect()).unwrap_or_default()
}

fn rows(runs: &[Value]) -> Vec<Row> {
    let per = |f: &dyn Fn(&Value) -> Option<f64>| runs.iter().map(f).collect::<Vec<_>>();
    let mut rows = Vec::new();
    // Kernels in the first run's order, matched by kernel family, variant, dtype and shape.
    for k in runs[0]["kernels"].as_array().into_iter().flatten() {
        let same = |r: &Value| -> Option<f64> {
            let found = r["kernels"].as_array()?.iter().find(|o| ["name", "variant", "dtype", "shape"].iter().all(|f| o[f] == k[f]))?;
            found.get("gflops").or(found.get("gbps")).and_then(Value::as_f64)
        };
        let unit = if k.get("gflops").is_some() { "GFLOP/s" } else { "GB/s" };
        let label = format!(
            "{} {} {} {}",
            k["name"].as_str().unwrap_or("?"),
            k["variant"].as_str().unwrap_or("?"),
            k["dtype"].as_str().unwrap_or("?"),
            k["shape"]
        );
        rows.push(Row { label, values: per(&same), higher_is_better: Some(true), unit });
    }
    if runs.iter().any(|r| r.get("full").is_some()) {
        rows.extend(full_rows(runs));
    }
    if runs.iter().all(|r| r.get("generation").is_none()) {
        return rows;
    }
    let g = |r: &Value, key: &str| r["generation"][key].as_f64();
    rows.push(Row { label: "generation: frames/s".into(), values: per(&|r| g(r, "frames_per_s")), higher_is_better: Some(true), unit: "" });
    let chunk = |r: &Value| median(steady_chunks(&r["generation"]));
    rows.push(Row {
        label: "generation: median ms per chunk (after the first)".into(),
        values: per(&chunk),
        higher_is_better: Some(false),
        unit: "ms",
    });
    let first = |r: &Value| r["generation"]["chunk_ms"].get(0).and_then(Value::as_f64);
    rows.push(Row {
        label: "generation: first chunk ms (with compiles)".into(),
        values: per(&first),
        higher_is_better: Some(false),
        unit: "ms",
    });
    let mib = |r: &Value| g(r, "peak_gpu_bytes").map(|b| b / 1048576.0);
    rows.push(Row { label: "generation: GPU memory".into(), values: per(&mib), higher_is_better: Some(false), unit: "MiB" });
    let share = |r: &Value| g(r, "memory_time_share").map(|s| 100.0 * s);
    rows.push(Row {
        label: "generation: SSM memory kernels' share of a call".into(),
        values: per(&share),
        higher_is_better: None,
        unit: "%",
    });
    rows
}

/// `bench --full`'s figures: the chunk, then each DiT-call and VAE family in the first
/// full run's order with its TFLOP/s (or time, for families not counted) and share of peak.
fn full_rows(runs: &[Value]) -> Vec<Row> {
    let per = |f: &dyn Fn(&Value) -> Option<f64>| runs.iter().map(f).collect::<Vec<_>>();
    let f = |r: &Value, path: &[&str]| path.iter().fold(&r["full"], |v, k| &v[*k]).as_f64();
    let last = |r: &Value| r["full"]["dit"]["chunk_ms"].as_array().and_then(|a| a.last()).and_then(Value::as_f64);
    let mut rows = vec![
        Row { label: "full: frames/s".into(), values: per(&|r| f(r, &["frames_per_s"])), higher_is_better: Some(true), unit: "" },
        Row { label: "full: ms per chunk".into(), values: per(&|r| f(r, &["chunk_ms"])), higher_is_better: Some(false), unit: "ms" },
        Row { label: "full: DiT ms per chunk".into(), values: per(&last), higher_is_better: Some(false), unit: "ms" },
        Row {
            label: "full: VAE ms per chunk".into(),
            values: per(&|r| f(r, &["vae", "chunk_ms"])),
            higher_is_better: Some(false),
            unit: "ms",
        },
    ];
    let Some(first) = runs.iter().find(|r| r.get("full").is_some()) else { return rows };
    for (part, path) in [("DiT call", ["dit", "call"]), ("VAE chunk", ["vae", "chunk"])] {
        let families = |r: &Value| path.iter().fold(&r["full"], |v, k| &v[*k])["families"].as_array().cloned().unwrap_or_default();
        for fam in families(first) {
            let name = fam["family"].as_str().unwrap_or("?").to_string();
            let find = |r: &Value, key: &str| families(r).iter().find(|o| o["family"] == fam["family"]).and_then(|o| o[key].as_f64());
            if fam["tflops"].is_number() {
                // GFLOP/s, so a software adapter's rate reads as more than 0.00 beside a GPU's.
                let label = format!("full: {part} {name}");
                let gflops = |r: &Value| find(r, "tflops").map(|t| 1e3 * t);
                rows.push(Row { label, values: per(&gflops), higher_is_better: Some(true), unit: "GFLOP/s" });
                let label = format!("full: {part} {name} share of peak");
                rows.push(Row { label, values: per(&|r| find(r, "peak_share").map(|s| 100.0 * s)), higher_is_better: None, unit: "%" });
            } else {
                let label = format!("full: {part} {name} ms");
                rows.push(Row { label, values: per(&|r| find(r, "ms")), higher_is_better: Some(false), unit: "ms" });
            }
        }
    }
    rows
}

/// The Markdown table of `runs` (at least one): a column per run, then its ratio to the first run.
pub fn table(runs: &[Value]) -> String {
    let name =
        |r: &Value| format!("{} ({})", r["adapter"]["name"].as_str().unwrap_or("?"), r["adapter"]["backend"].as_str().unwrap_or("?"));
    let mut head = vec!["figure".to_string()];
    for (i, r) in runs.iter().enumerate() {
        head.push(name(r));
        if i > 0 {
            head.push("vs first".into());
        }
    }
    let mut s = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    // Text rows: each run's value, and whether it is the first run's.
    let text = |label: &str, f: &dyn Fn(&Value) -> String| {
        let first = f(&runs[0]);
        let mut cells = vec![label.to_string()];
        for (i, r) in runs.iter().enumerate() {
            cells.push(f(r));
            if i > 0 {
                cells.push(if f(r) == first { "same" } else { "differs" }.into());
            }
        }
        format!("| {} |\n", cells.join(" | "))
    };
    let field = |v: &Value| v.as_str().unwrap_or("?").to_string();
    s += &text("device type, driver", &|r| format!("{}, {}", field(&r["adapter"]["device_type"]), field(&r["adapter"]["driver"])));
    if runs.iter().any(|r| r.get("generation").is_some()) {
        s += &text("generation config", &|r| field(&r["generation"]["config"]));
    }
    if runs.iter().any(|r| r.get("full").is_some()) {
        s += &text("full config", &|r| field(&r["full"]["config"]));
    }
    for row in rows(runs) {
        let mut cells = vec![row.label.clone()];
        for (i, v) in row.values.iter().enumerate() {
            cells.push(v.map_or("–".into(), |v| format!("{v:.2} {}", row.unit).trim_end().to_string()));
            if i > 0 {
                let ratio = match (row.values[0], *v, row.higher_is_better) {
                    (Some(a), Some(b), Some(higher)) if a > 0.0 && b > 0.0 => format!("{:.2}×", if higher { b / a } else { a / b }),
                    _ => "–".into(),
                };
                cells.push(ratio);
            }
        }
        s += &format!("| {} |\n", cells.join(" | "));
    }
    if runs.iter().any(|r| r["generation"]["config"] != runs[0]["generation"]["config"] || r["full"]["config"] != runs[0]["full"]["config"])
    {
        s += "\nThe generation configs differ: compare the generation rows with care.\n";
    }
    s
}
