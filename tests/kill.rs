//! A run killed with SIGKILL at any moment leaves a store the next run completes, and the final
//! artifacts equal an uninterrupted run's.

mod common;

use std::time::Duration;

use common::{SMALL_STAGES, Workspace, small_config};

#[test]
fn sigkill_at_several_moments_then_resume_gives_identical_artifacts() {
    let config = small_config(2500);
    let reference = Workspace::new("kill-reference", &config);
    reference.run(&[]);
    let expected = reference.artifacts_modulo_timings();

    let ws = Workspace::new("kill", &config);
    let mut finished_before_kill = 0;
    for delay_ms in [150, 400, 700, 1100, 1600] {
        let mut child = ws
            .command(&["run", "-j", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_some() {
            finished_before_kill += 1;
            continue;
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
    }
    assert!(finished_before_kill < 5, "training must outlast at least one kill");
    let (ran, cached) = ws.run(&[]);
    assert_eq!(ran + cached, SMALL_STAGES);
    assert!(cached > 0, "work done before the kills was kept");
    // Equal to the byte but for the wall times the report quotes.
    assert_eq!(ws.artifacts_modulo_timings(), expected);
    assert!(ws.repro(&["verify"]).status.success());
}
