//! `coda-bench`: load tool (see README).
fn main() {}
