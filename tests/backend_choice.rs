//! `make report` trains on libtorch where an NVIDIA GPU is usable, without being asked, and on
//! flex otherwise (scripts/detect-backend.sh, checked with fake `nvidia-smi` programs).

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A fake nvidia-smi that prints `listing` and exits with `code`.
fn fake_smi(dir: &Path, name: &str, listing: &str, code: i32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\ncat <<'OUT'\n{listing}\nOUT\nexit {code}\n")).unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path.display().to_string()
}

fn detect(smi: &str) -> (String, String) {
    let out = Command::new("bash")
        .args(["scripts/detect-backend.sh", "--explain"])
        .current_dir(ROOT)
        .env("NVIDIA_SMI", smi)
        .output()
        .unwrap();
    assert!(out.status.success());
    (String::from_utf8(out.stdout).unwrap().trim().to_string(), String::from_utf8(out.stderr).unwrap())
}

/// What `make -n report` would run, with `smi` as the machine's nvidia-smi and `vars` given.
fn make_report_plan(smi: &str, vars: &[&str]) -> String {
    let out = Command::new("make")
        .args(["-n", "report"])
        .args(vars)
        .current_dir(ROOT)
        .env("NVIDIA_SMI", smi)
        .env_remove("BACKEND")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_usable_gpu_means_tch_and_anything_else_flex() {
    let dir = tempfile::tempdir().unwrap();
    let h200 = fake_smi(dir.path(), "gpu", "GPU 0: NVIDIA H200 (UUID: GPU-3f1c9a2e-0000-1111-2222-333344445555)", 0);
    let (choice, said) = detect(&h200);
    assert_eq!(choice, "tch");
    assert!(said.contains("GPU 0: NVIDIA H200 is usable") && said.contains("about 4 GB"), "{said}");
    assert!(!said.contains("UUID"), "{said}");

    let no_driver = fake_smi(
        dir.path(),
        "no-driver",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
        9,
    );
    let no_devices = fake_smi(dir.path(), "no-devices", "No devices were found", 0);
    let missing = dir.path().join("absent").display().to_string();
    for smi in [&no_driver, &no_devices, &missing] {
        let (choice, said) = detect(smi);
        assert_eq!((choice.as_str(), said.as_str()), ("flex", ""), "{smi}");
    }

    // make report follows it, says why, and BACKEND=flex opts out.
    let plan = make_report_plan(&h200, &[]);
    assert!(plan.contains("--features tch") && plan.contains("-s pipeline.device=auto"), "{plan}");
    assert!(plan.contains("detect-backend.sh --explain"), "{plan}");
    let opted_out = make_report_plan(&h200, &["BACKEND=flex"]);
    assert!(!opted_out.contains("tch") && opted_out.contains("cargo build --release"), "{opted_out}");
    let cpu_only = make_report_plan(&no_driver, &[]);
    assert!(!cpu_only.contains("tch") && !cpu_only.contains("--explain"), "{cpu_only}");
}
