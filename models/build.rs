//! With the `torch` feature: records which LibTorch tch was compiled against (torch-sys
//! passes its `lib` folder as `DEP_TCH_LIBTORCH_LIB`), for the run-time version check in
//! `torch.rs`, and sets an rpath to it for this crate's tests and examples.

include!("src/torch_version.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/torch_version.rs");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    let version = libtorch_version_in(std::path::Path::new(&lib)).unwrap_or_default();
    println!("cargo:rustc-env=PITCHSIDE_LIBTORCH_LIB={lib}");
    println!("cargo:rustc-env=PITCHSIDE_LIBTORCH_VERSION={version}");
    if !lib.is_empty() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
