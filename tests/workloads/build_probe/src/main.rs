//! Prints what reached the binary: the C level, the C++ runtime, the workspace's cfg and env.
use std::ffi::CStr;
use std::os::raw::c_char;

unsafe extern "C" {
    fn probe_level() -> *const c_char;
    fn probe_cpp(value: i32) -> i32;
}

fn main() {
    let level = unsafe { CStr::from_ptr(probe_level()) }
        .to_str()
        .unwrap_or("?");
    let cpp = unsafe { probe_cpp(21) };
    let cfg = if cfg!(factory_probe) { "yes" } else { "no" };
    println!(
        "level={level} cpp={cpp} cfg={cfg} env={} page={}",
        env!("FACTORY_PROBE_ENV"),
        env!("FACTORY_PROBE_PAGE")
    );
}
