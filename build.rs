//! With the `torch` feature: an rpath to the LibTorch `lib` folder tch was linked against
//! (torch-sys passes it as DEP_TCH_LIBTORCH_LIB), so `pitchside` and its tests start
//! without LD_LIBRARY_PATH on the machine that built them. Elsewhere (a GPU host with its
//! own PyTorch) LD_LIBRARY_PATH names that host's `torch/lib`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
