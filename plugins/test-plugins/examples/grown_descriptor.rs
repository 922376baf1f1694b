//! A plugin built against a later minor revision: its descriptor has a field appended and
//! says so in `struct_size`. The host must load it and ignore the extra field.

use std::sync::OnceLock;

use pitchside_plugin::abi::PsPluginDescriptor;

mod common;

#[repr(C)]
struct Grown {
    base: PsPluginDescriptor,
    future_field: u64,
}

#[unsafe(no_mangle)]
pub extern "C" fn pitchside_plugin_entry() -> *const PsPluginDescriptor {
    static DESCRIPTOR: OnceLock<Grown> = OnceLock::new();
    &DESCRIPTOR
        .get_or_init(|| Grown {
            base: PsPluginDescriptor {
                struct_size: size_of::<Grown>() as u32,
                ..common::valid_descriptor()
            },
            future_field: u64::MAX,
        })
        .base
}
