//! A plugin whose descriptor claims to be smaller than ABI version 1's.

use std::sync::OnceLock;

use pitchside_plugin::abi::PsPluginDescriptor;

mod common;

#[unsafe(no_mangle)]
pub extern "C" fn pitchside_plugin_entry() -> *const PsPluginDescriptor {
    static DESCRIPTOR: OnceLock<PsPluginDescriptor> = OnceLock::new();
    DESCRIPTOR.get_or_init(|| PsPluginDescriptor {
        struct_size: 40,
        ..common::valid_descriptor()
    })
}
