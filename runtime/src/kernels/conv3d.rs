//! Placeholder: the conv3d family is being written.

pub fn variants() -> Vec<(String, String)> {
    Vec::new()
}
