//! A shared library that is not a plugin: it exports a function, but not the entry symbol.

#[unsafe(no_mangle)]
pub extern "C" fn some_other_function() -> i32 {
    42
}
