//! `cargo run --release -p models-bundle --example requantize_gguf -- IN.gguf OUT.gguf`: what the
//! model manager's `gguf-q5_0-to-q4_0` assembly does, on a file already on disk.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: requantize_gguf IN.gguf OUT.gguf");
        std::process::exit(2);
    };
    let run = || -> Result<u64, String> {
        let gguf = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
        let file = std::fs::File::create(output).map_err(|e| format!("{output}: {e}"))?;
        let mut out = std::io::BufWriter::new(file);
        let n =
            models_bundle::gguf_q4_0::requantize(&gguf, &mut out).map_err(|e| format!("{e:?}"))?;
        std::io::Write::flush(&mut out).map_err(|e| format!("{output}: {e}"))?;
        Ok(n)
    };
    match run() {
        Ok(n) => println!("{output}: {n} bytes"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
