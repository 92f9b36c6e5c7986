//! Build script shared by the crates whose binaries or tests may link
//! libtorch (the tensors crate with feature `tch`, the facade, the CLI, the
//! end-to-end tests).
//!
//! `cargo xtask setup` points `LIBTORCH` (see `.cargo/config.toml`) at the
//! pinned libtorch, and torch-sys links it. This adds its `lib/` folder to the
//! run-time search path (rpath) so the binaries start without
//! `LD_LIBRARY_PATH`. Harmless for a binary built without libtorch.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(libtorch) = std::env::var_os("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
