// The version of the LibTorch whose `lib` folder is `lib_dir`, if it says: `torch/version.py`
// of a PyTorch install, `build-version` of a libtorch archive. Included by build.rs too.
fn libtorch_version_in(lib_dir: &std::path::Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text.lines().find_map(|l| {
            let v = l.strip_prefix("__version__")?.split(['\'', '"']).nth(1)?;
            Some(v.to_string())
        });
    }
    let v = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(v.trim().to_string())
}
