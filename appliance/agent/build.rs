//! The tests and examples link llama.cpp's shared libraries (models-llama, a dev-dependency):
//! find them next to the binary through DT_RPATH and keep static ggml symbols out of the dynamic
//! symbol table. Why each flag: models/README.md.
fn main() {
    let args =
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN:$ORIGIN/../lib/switchboard,--exclude-libs,ALL";
    println!("cargo:rustc-link-arg-tests={args}");
    println!("cargo:rustc-link-arg-examples={args}");
}
