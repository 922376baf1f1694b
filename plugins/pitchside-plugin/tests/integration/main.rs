//! The plugin crate's integration tests, one binary: the host loader against misbehaving
//! libraries (`host`), the example colour detector as a library (`colour_detector`), and
//! the README's C plugin (`c_plugin`). Filter by module, e.g.
//! `cargo test -p pitchside-plugin --test integration host::`.

mod c_plugin;
mod colour_detector;
mod host;
// Shared with benches/overhead.rs, which builds the same libraries.
#[path = "../support/mod.rs"]
mod support;
