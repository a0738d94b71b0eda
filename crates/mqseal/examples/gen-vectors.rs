//! Writes `spec/vectors/*.json` from fixed seeds. `tests/vectors.rs` fails if the committed files
//! differ from what this produces, so run it after any intended format change:
//!
//! ```sh
//! cargo run -p mqseal --example gen-vectors
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/generate.rs"]
mod generate;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors");
    std::fs::create_dir_all(&dir).unwrap();
    for file in generate::FILES {
        let text = serde_json::to_string_pretty(&generate::generate(file)).unwrap() + "\n";
        std::fs::write(dir.join(file), text).unwrap();
        println!("wrote spec/vectors/{file}");
    }
}
