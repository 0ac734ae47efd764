//! WGSL sources and the tiny preprocessor that specialises them.
//!
//! A kernel file may contain `#include "name.wgsl"`, `#ifdef NAME` / `#ifndef NAME`
//! / `#else` / `#endif` blocks and `{{NAME}}` placeholders; a [`Defines`] set
//! drives all three. Only what changes a shader's structure goes here (dtype,
//! tile sizes, subgroup use); counts and strides travel in the params.
use std::collections::BTreeMap;

// Every WGSL file of `shaders/`, embedded at build time by build.rs.
include!(concat!(env!("OUT_DIR"), "/shaders.rs"));

/// Name → value; a flag is a define whose value is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Defines(BTreeMap<String, String>);

impl Defines {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn flag(mut self, name: &str, on: bool) -> Self {
        if on {
            self.0.insert(name.into(), String::new());
        }
        self
    }

    pub fn set(mut self, name: &str, value: impl ToString) -> Self {
        self.0.insert(name.into(), value.to_string());
        self
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// The raw text of a file in `shaders/`.
pub fn source(name: &str) -> &'static str {
    SOURCES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).unwrap_or_else(|| panic!("shader {name} is not in shaders/"))
}

/// Expands `name` with `defines`: includes, conditionals and placeholders.
pub fn expand(name: &str, defines: &Defines) -> String {
    let mut out = String::new();
    expand_into(name, defines, &mut out, 0);
    for (k, v) in &defines.0 {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    debug_assert!(!out.contains("{{"), "unresolved placeholder in {name}:\n{out}");
    out
}

fn expand_into(name: &str, defines: &Defines, out: &mut String, depth: usize) {
    assert!(depth < 8, "include cycle at {name}");
    // Stack of (this branch active, parent active).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let active = |stack: &[(bool, bool)]| stack.last().is_none_or(|&(a, p)| a && p);
    for (lineno, line) in source(name).lines().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("#ifdef ") {
            let parent = active(&stack);
            stack.push((defines.has(rest.trim()), parent));
        } else if let Some(rest) = t.strip_prefix("#ifndef ") {
            let parent = active(&stack);
            stack.push((!defines.has(rest.trim()), parent));
        } else if t == "#else" {
            let top = stack.last_mut().unwrap_or_else(|| panic!("{name}:{}: #else without #ifdef", lineno + 1));
            top.0 = !top.0;
        } else if t == "#endif" {
            stack.pop().unwrap_or_else(|| panic!("{name}:{}: #endif without #ifdef", lineno + 1));
        } else if let Some(rest) = t.strip_prefix("#include ") {
            if active(&stack) {
                expand_into(rest.trim().trim_matches('"'), defines, out, depth + 1);
            }
        } else if active(&stack) {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(stack.is_empty(), "{name}: unterminated #ifdef");
}

/// Parses and validates WGSL with naga, as the tests do for every variant.
pub fn validate(label: &str, wgsl: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| format!("{label}: {}", e.emit_to_string(wgsl)))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| format!("{label}: {}", e.emit_to_string(wgsl)))?;
    Ok(())
}

/// The members (name, byte offset) and size of the WGSL `struct Params`, read by naga,
/// to compare with the Rust twin's [`ParamsLayout`](crate::pipeline::ParamsLayout).
pub fn params_layout(label: &str, wgsl: &str) -> Result<(Vec<(String, usize)>, usize), String> {
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| format!("{label}: {}", e.emit_to_string(wgsl)))?;
    let layout = module
        .types
        .iter()
        .find_map(|(_, t)| match &t.inner {
            naga::TypeInner::Struct { members, span } if t.name.as_deref() == Some("Params") => {
                Some((members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize)).collect(), *span as usize))
            }
            _ => None,
        })
        .ok_or_else(|| format!("{label}: no struct Params"));
    layout
}
