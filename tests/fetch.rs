//! MNIST fetching against real HTTP servers on 127.0.0.1 and local directories. No internet.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::http::{Route, Server, dead_mirror};
use repro::data::mnist::{self, FetchOptions, TEST_LABELS, TRAIN_LABELS};

fn opts() -> FetchOptions {
    FetchOptions { timeout: Duration::from_secs(5), attempts: 2, backoff: Duration::from_millis(10) }
}

fn gz(name: &str) -> Vec<u8> {
    std::fs::read(common::shared_mnist().join(format!("{name}.gz"))).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn route(file: &str, body: Route) -> HashMap<String, Route> {
    HashMap::from([(format!("/mnist/{file}.gz"), body)])
}

/// Nothing but the verified file (no temporaries, no bad file) is ever left in the directory.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_good_mirror_delivers_a_verified_file_and_is_not_asked_twice() {
    let server = Server::start(route(TEST_LABELS.name, Route::Body(gz(TEST_LABELS.name))));
    let dir = scratch("good");
    let path = mnist::ensure(&dir, &TEST_LABELS, std::slice::from_ref(&server.base), &opts()).unwrap();
    assert_eq!(mnist::sha256_hex(&std::fs::read(&path).unwrap()), TEST_LABELS.sha256);
    assert_eq!(leftovers(&dir), [TEST_LABELS.name]);
    let asked = server.requests.load(Ordering::SeqCst);
    mnist::ensure(&dir, &TEST_LABELS, std::slice::from_ref(&server.base), &opts()).unwrap();
    assert_eq!(server.requests.load(Ordering::SeqCst), asked, "a verified file is not fetched again");
}

#[test]
fn a_dead_mirror_is_skipped_for_the_next() {
    let server = Server::start(route(TEST_LABELS.name, Route::Body(gz(TEST_LABELS.name))));
    let dir = scratch("dead-then-good");
    mnist::ensure(&dir, &TEST_LABELS, &[dead_mirror(), server.base.clone()], &opts()).unwrap();
    assert_eq!(leftovers(&dir), [TEST_LABELS.name]);
}

#[test]
fn a_download_cut_short_is_retried_then_reported_and_leaves_nothing() {
    let server = Server::start(route(TEST_LABELS.name, Route::CutShort(gz(TEST_LABELS.name))));
    let dir = scratch("cut");
    let err =
        format!("{:#}", mnist::ensure(&dir, &TEST_LABELS, std::slice::from_ref(&server.base), &opts()).unwrap_err());
    assert!(err.contains(&server.base) && err.contains("after 2 attempt(s)"), "{err}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 2, "retried once");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn a_wrong_checksum_is_never_used_and_every_failure_is_listed() {
    // The training labels served under the test labels' name: valid gzip, valid IDX, wrong bytes.
    let server = Server::start(route(TEST_LABELS.name, Route::Body(gz(TRAIN_LABELS.name))));
    let dir = scratch("checksum");
    let dead = dead_mirror();
    let err =
        format!("{:#}", mnist::ensure(&dir, &TEST_LABELS, &[server.base.clone(), dead.clone()], &opts()).unwrap_err());
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&server.base) && err.contains(&dead), "every mirror is named: {err}");
    assert!(err.contains("To place it by hand"), "{err}");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn a_local_directory_mirror_and_a_corrupt_existing_file() {
    let dir = scratch("local");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(TEST_LABELS.name), b"not mnist").unwrap();
    let mirror = common::shared_mnist().display().to_string();
    mnist::ensure(&dir, &TEST_LABELS, &[mirror], &opts()).unwrap();
    assert_eq!(mnist::sha256_hex(&std::fs::read(dir.join(TEST_LABELS.name)).unwrap()), TEST_LABELS.sha256);
}

#[test]
fn a_file_placed_by_hand_is_used() {
    let dir = scratch("by-hand");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{}.gz", TEST_LABELS.name)), gz(TEST_LABELS.name)).unwrap();
    mnist::ensure(&dir, &TEST_LABELS, &[dead_mirror()], &opts()).unwrap();
    assert!(dir.join(TEST_LABELS.name).is_file());
}

/// A run killed while writing a file leaves its temporary; the next fetch into the directory
/// removes it, but not one whose writer is still running (a directory shared by workspaces).
#[test]
fn a_write_killed_half_way_is_cleared_and_one_in_flight_is_not() {
    use repro::engine::atomic::temp_marker;
    let server = Server::start(route(TEST_LABELS.name, Route::Body(gz(TEST_LABELS.name))));
    let dir = scratch("killed-write");
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let ended = child.id();
    child.wait().unwrap();
    let killed = format!(".{}{}{ended}.0", TRAIN_LABELS.name, temp_marker());
    let in_flight = format!(".{}{}{}.0", TRAIN_LABELS.name, temp_marker(), std::process::id());
    for name in [&killed, &in_flight] {
        std::fs::write(dir.join(name), b"half a file").unwrap();
    }
    mnist::ensure(&dir, &TEST_LABELS, std::slice::from_ref(&server.base), &opts()).unwrap();
    let mut expected = vec![in_flight, TEST_LABELS.name.to_string()];
    expected.sort();
    let mut left = leftovers(&dir);
    left.sort();
    assert_eq!(left, expected);
}
