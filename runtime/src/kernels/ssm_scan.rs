//! Placeholder: the ssm_scan family is being written.

pub fn variants() -> Vec<(String, String)> {
    Vec::new()
}
