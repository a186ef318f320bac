//! Runs a tool that no builder has, the way build scripts shell out to protoc or cmake, when it
//! builds for aarch64. For x86_64 it stands in for a long compile instead (two minutes), which a
//! failure of the aarch64 target built beside it must cut short (tests/integration/
//! test_build_scripts.py).
use std::process::Command;
use std::time::Duration;

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64") {
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let output = Command::new("sh")
        .args(["-c", "factory-missing-tool --version"])
        .output()
        .expect("sh");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "factory-missing-tool failed");
}
