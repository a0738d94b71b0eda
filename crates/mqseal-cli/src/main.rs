//! The `mqseal` command.
fn main() {}
