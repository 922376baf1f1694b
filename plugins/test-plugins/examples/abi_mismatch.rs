//! A plugin built for a future major ABI version (999): the host must refuse it after
//! reading the header, without touching the rest.

use std::sync::OnceLock;

use pitchside_plugin::abi::PsPluginDescriptor;

mod common;

#[unsafe(no_mangle)]
pub extern "C" fn pitchside_plugin_entry() -> *const PsPluginDescriptor {
    static DESCRIPTOR: OnceLock<PsPluginDescriptor> = OnceLock::new();
    DESCRIPTOR.get_or_init(|| PsPluginDescriptor {
        abi_version: 999,
        ..common::valid_descriptor()
    })
}
