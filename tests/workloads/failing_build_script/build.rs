//! Runs a tool that no builder has, the way build scripts shell out to protoc or cmake.
use std::process::Command;

fn main() {
    let output = Command::new("sh")
        .args(["-c", "factory-missing-tool --version"])
        .output()
        .expect("sh");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "factory-missing-tool failed");
}
