//! Lets the `tpkg` binary find libtorch at run time without
//! `LD_LIBRARY_PATH`: `cargo xtask setup` points `LIBTORCH` (see
//! `.cargo/config.toml`) at the pinned libtorch, and we add its `lib/` folder
//! to the run-time search path (rpath).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Some(libtorch) = std::env::var_os("LIBTORCH") {
        let lib = std::path::Path::new(&libtorch).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
