//! A build with the `cuda` feature is one binary for GPU and CPU machines (built with
//! `scripts/cuda/build.sh`, which loads CUDA at run time): where the NVIDIA driver is missing,
//! `--device auto` embeds on the CPU and `--device cuda` says that no driver was found.
//! Where a driver is present, `--device auto` must pick the GPU instead.
#![cfg(feature = "cuda")]

use std::path::PathBuf;
use std::process::Command;

/// The `embed` example next to this test's `deps/` folder (cargo builds examples for tests).
fn embed_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/embed")
}

fn driver_present() -> bool {
    // SAFETY: a NUL-terminated name; the handle is closed again at once.
    let handle = unsafe { libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_LAZY) };
    if handle.is_null() {
        return false;
    }
    // SAFETY: the handle came from dlopen above.
    unsafe { libc::dlclose(handle) };
    true
}

fn embed(device: &str, input: &std::path::Path) -> std::process::Output {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-mean");
    Command::new(embed_example())
        .args(["--model", model.to_str().unwrap(), "--device", device])
        .arg("--input")
        .arg(input)
        .env("RUST_LOG", "rembed=info")
        .output()
        .unwrap()
}

#[test]
fn auto_falls_back_to_the_cpu_without_a_driver_and_cuda_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "first line\nsecond line\n").unwrap();

    let auto = embed("auto", &input);
    let stderr = String::from_utf8_lossy(&auto.stderr);
    assert!(auto.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&auto.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}\n{stderr}");
    let cuda = embed("cuda", &input);
    let cuda_stderr = String::from_utf8_lossy(&cuda.stderr);
    if driver_present() {
        assert!(stderr.contains("Cuda"), "auto must pick the GPU: {stderr}");
        assert!(cuda.status.success(), "{cuda_stderr}");
    } else {
        assert!(stderr.contains("device=[Cpu]"), "{stderr}");
        assert!(stderr.contains("no CUDA device; using the CPU"), "{stderr}");
        assert!(stderr.contains("libcuda.so.1"), "{stderr}");
        assert!(!cuda.status.success());
        assert!(
            cuda_stderr.contains("cuda:0") && cuda_stderr.contains("NVIDIA driver"),
            "{cuda_stderr}"
        );
    }
}
