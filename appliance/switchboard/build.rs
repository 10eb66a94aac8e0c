//! The binary and its tests link llama.cpp's shared libraries (models-llama): find them next to the
//! binary or in the package's library dir through DT_RPATH, and keep whisper.cpp's static ggml
//! out of the dynamic symbol table. Why each flag: models/README.md.
fn main() {
    let args =
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN:$ORIGIN/../lib/switchboard,--exclude-libs,ALL";
    println!("cargo:rustc-link-arg-bins={args}");
    println!("cargo:rustc-link-arg-tests={args}");
}
