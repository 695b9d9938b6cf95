//! A corpus job killed with SIGKILL at random moments, again and again, then resumed to the end,
//! holds every unique non-empty input id exactly once, with the vectors of an uninterrupted run.
//!
//! The job runs in a child process: this test binary re-executes itself with
//! `REMBED_JOB_TEST_CHILD` set, and in the child this same test function only runs the job.
//! Set `REMBED_JOB_TEST_SEED` to replay a failing run's kill points.
#![cfg(feature = "job")]

mod job_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use job_support::{assert_expected_ids, assert_same_output, load, read_output, write_corpus, Rng};
use rembed::job::{self, Manifest, Shard};

const CHILD: &str = "REMBED_JOB_TEST_CHILD";
const TEST_NAME: &str = "sigkill_at_random_points_then_resume_embeds_each_record_once";

fn config(input: &Path, output: &Path) -> job::Config {
    job::Config::new(input, output)
        .with_checkpoint_every(400)
        .with_batch_records(100)
        .with_progress(false)
}

fn spawn_child(input: &Path, output: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, format!("{}\n{}", input.display(), output.display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn part_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
            .count()
    })
}

#[test]
fn sigkill_at_random_points_then_resume_embeds_each_record_once() {
    if let Ok(paths) = std::env::var(CHILD) {
        // The child: run the job; the parent kills it or waits for it.
        let (input, output) = paths.split_once('\n').unwrap();
        let report = job::run(&load("bert-mean"), &config(input.as_ref(), output.as_ref()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.balanced(), "{report}");
        return;
    }

    let seed = std::env::var("REMBED_JOB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("REMBED_JOB_TEST_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    let expected = write_corpus(&input, 12_000, 42);

    // The reference: one uninterrupted run, in this process.
    let reference_dir = dir.path().join("reference");
    let reference = job::run(&load("bert-mean"), &config(&input, &reference_dir)).unwrap();
    assert!(reference.balanced(), "{reference}");
    let reference_rows = read_output(&reference_dir);
    assert_expected_ids(&reference_rows, &expected);
    let total_parts = reference.counts.embedded.div_ceil(400) as usize;
    assert!(total_parts >= 10, "{reference}");

    // Kill the first child during start-up, the next ones once they wrote a random number of
    // further parts (plus a random few milliseconds, to land anywhere in a write), the last
    // one once every part is written (in the job's end: last checkpoint, manifest, report);
    // then let a last run finish.
    let output: PathBuf = dir.path().join("killed");
    let mut kills = 0;
    let mut children = 0;
    loop {
        let mut child = spawn_child(&input, &output);
        children += 1;
        let mut killed = false;
        if kills < 6 {
            let parts_before = part_files(&output);
            let target = match kills {
                0 => 0,
                5 => total_parts,
                _ => (parts_before + 1 + rng.below(3) as usize).min(total_parts - 1),
            };
            let deadline = Instant::now() + Duration::from_secs(120);
            while part_files(&output) < target && Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.below(40)));
            // SIGKILL: no destructor, no flush, no chance to clean up.
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                kills += 1;
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        if !killed {
            // It ran to its end: the last run, which must succeed.
            assert!(
                status.success(),
                "a run that was not killed failed: {status}"
            );
            break;
        }
    }
    eprintln!("{kills} kills, {children} runs");

    let rows = read_output(&output);
    assert_expected_ids(&rows, &expected);
    assert_same_output(&rows, &reference_rows);

    let manifest = Manifest::read(&output.join(Manifest::file_name(Shard::ALL))).unwrap();
    assert!(manifest.complete);
    assert!(
        manifest.counts.imbalances().is_empty(),
        "{:?}",
        manifest.counts
    );
    assert_eq!(manifest.counts.embedded, expected.ids.len() as u64);
    // The final run found earlier runs' work by id, and only redid what was not durable.
    assert!(manifest.counts.resumed > 0, "{:?}", manifest.counts);
    // Every run left its record, but the first when it was killed before it wrote anything.
    let runs = manifest.runs.len();
    assert!(
        runs == children || runs == children - 1,
        "{runs} runs recorded"
    );
    let killed_runs = manifest
        .runs
        .iter()
        .filter(|r| r.ended_at.is_none())
        .count();
    // Only the last run finished, or the last two: the kill aimed at the job's end may land
    // after that run recorded its end.
    let finished = runs - killed_runs;
    let second_last_finished = runs >= 2 && manifest.runs[runs - 2].ended_at.is_some();
    assert!(
        finished == 1 || (finished == 2 && second_last_finished),
        "{finished} of {runs} runs finished"
    );
    let same_buckets = |c: &job::Counts| {
        (
            c.read,
            c.malformed,
            c.duplicates,
            c.unique,
            c.empty,
            c.embedded,
            c.failed,
        )
    };
    assert_eq!(
        same_buckets(&manifest.counts),
        same_buckets(&reference.counts)
    );
    let leftovers: Vec<_> = std::fs::read_dir(&output)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let check = job::verify(&output, None).unwrap();
    assert!(check.ok(), "{check}");
}
