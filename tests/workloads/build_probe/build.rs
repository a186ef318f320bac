//! Compiles csrc/level.c and csrc/thrower.cpp with the target's compilers, as cc-rs would.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn var(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| panic!("build_probe: {name} is not set"))
}

fn run(program: &str, args: &[String]) {
    println!("running: {program} {}", args.join(" "));
    let status = Command::new(program).args(args).status().expect(program);
    assert!(status.success(), "build_probe: {program} failed");
}

fn main() {
    let target = var("TARGET").replace('-', "_");
    let out = PathBuf::from(var("OUT_DIR"));
    let cflags: Vec<String> = var(&format!("CFLAGS_{target}"))
        .split_whitespace()
        .map(String::from)
        .collect();
    let cxxflags: Vec<String> = var(&format!("CXXFLAGS_{target}"))
        .split_whitespace()
        .map(String::from)
        .collect();
    let objects = [
        ("level.c", var("TARGET_CC"), cflags),
        ("thrower.cpp", var("TARGET_CXX"), cxxflags),
    ];
    let mut archive = vec![
        "crs".to_string(),
        out.join("libprobe.a").display().to_string(),
    ];
    for (source, compiler, flags) in objects {
        let object = out.join(format!("{source}.o")).display().to_string();
        let mut args = flags;
        args.extend(
            [
                "-O2",
                "-fPIC",
                "-c",
                &format!("csrc/{source}"),
                "-o",
                &object,
            ]
            .map(String::from),
        );
        run(&compiler, &args);
        archive.push(object);
    }
    run(&var("TARGET_AR"), &archive);
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=probe");
    println!(
        "cargo:rustc-link-lib=static={}",
        var(&format!("CXXSTDLIB_{target}"))
    );
    println!(
        "cargo:rustc-env=FACTORY_PROBE_PAGE={}",
        env::var("JEMALLOC_SYS_WITH_LG_PAGE").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=FACTORY_PROBE_ENV={}",
        env::var("FACTORY_PROBE_FROM_ENV").unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=csrc");
}
