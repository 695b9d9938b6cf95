//! Shards run separately into one directory add up to the unsharded run, and `verify` tells a
//! complete, duplicate-free union from a broken one.
#![cfg(feature = "job")]

mod job_support;

use std::collections::BTreeMap;
use std::path::Path;

use job_support::{assert_expected_ids, assert_same_output, load, read_output, write_corpus, Row};
use rembed::job::{self, Manifest, Shard};

const SHARDS: u32 = 3;

fn config(input: &Path, output: &Path) -> job::Config {
    job::Config::new(input, output)
        .with_checkpoint_every(250)
        .with_progress(false)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

#[test]
fn shards_add_up_to_the_unsharded_run_and_verify_catches_damage() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    let expected = write_corpus(&input, 3000, 11);
    let embedder = load("bert-mean");

    let whole = dir.path().join("whole");
    job::run(&embedder, &config(&input, &whole)).unwrap();
    let whole_rows = read_output(&whole);
    assert_expected_ids(&whole_rows, &expected);

    // Each shard as its own "machine", in any order, into one shared directory; as a Slurm
    // array task (`--array=1-3`) would resolve them.
    let sharded = dir.path().join("sharded");
    let mut per_shard = vec![job::Counts::default(); SHARDS as usize];
    for task in [3, 1, 2] {
        let env = |name: &str| match name {
            "SLURM_ARRAY_TASK_ID" => Some(task.to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some("1".to_string()),
            "SLURM_ARRAY_TASK_COUNT" => Some(SHARDS.to_string()),
            _ => None,
        };
        let shard = Shard::resolve(Some("auto"), env).unwrap();
        assert_eq!((shard.index(), shard.count()), (task - 1, SHARDS));
        let report = job::run(&embedder, &config(&input, &sharded).with_shard(shard)).unwrap();
        assert!(report.balanced(), "{report}");
        per_shard[shard.index() as usize] = report.counts;
    }
    // Every shard read the whole input, took its own ids and left the rest to the others.
    for counts in &per_shard {
        assert_eq!(counts.read, per_shard[0].read);
        assert!(counts.other_shards > counts.read / 2, "{counts:?}");
    }
    let embedded: u64 = per_shard.iter().map(|c| c.embedded).sum();
    assert_eq!(embedded, expected.ids.len() as u64);

    let check = job::verify(&sharded, None).unwrap();
    assert!(check.ok(), "{check}");
    assert_eq!((check.rows, check.expected), (embedded, embedded));
    let union: BTreeMap<String, Row> = read_output(&sharded);
    assert_same_output(&union, &whole_rows);

    // A part file of shard 0 copied under shard 1's name: duplicates in the wrong shard.
    let damaged = dir.path().join("duplicated");
    copy_dir(&sharded, &damaged);
    std::fs::copy(
        damaged.join("part-s0000of0003-000000.parquet"),
        damaged.join("part-s0001of0003-000099.parquet"),
    )
    .unwrap();
    let check = job::verify(&damaged, None).unwrap();
    assert!(!check.ok());
    assert!(
        check.duplicate_ids > 0 && check.wrong_shard == check.duplicate_ids,
        "{check}"
    );

    // A shard that never ran (its manifest and parts gone): missing ids and a missing shard.
    let partial = dir.path().join("partial");
    copy_dir(&sharded, &partial);
    for entry in std::fs::read_dir(&partial).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("s0002of0003") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let check = job::verify(&partial, None).unwrap();
    assert!(!check.ok());
    assert_eq!(check.missing_shards, vec![2]);
    assert_eq!(check.missing, per_shard[2].embedded, "{check}");

    // Each shard's manifest names its shard and the same model.
    let manifest = Manifest::read(&sharded.join(Manifest::file_name(Shard::new(1, 3).unwrap())));
    let manifest = manifest.unwrap();
    assert_eq!((manifest.shard_index, manifest.shard_count), (1, SHARDS));
}

/// `sbatch --array=3` reruns one task of an 8-task array: `--shard auto/8` there is shard 3
/// (it was shard 0, silently), and `--shard 3/8` into the existing output resumes that shard.
#[test]
fn a_one_task_slurm_rerun_resumes_its_shard() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.jsonl");
    let expected = write_corpus(&input, 1200, 21);
    let embedder = load("bert-mean");
    let output = dir.path().join("out");
    let rerun_env = |name: &str| match name {
        "SLURM_ARRAY_TASK_ID" | "SLURM_ARRAY_TASK_MIN" | "SLURM_ARRAY_TASK_MAX" => {
            Some("3".to_string())
        }
        "SLURM_ARRAY_TASK_COUNT" => Some("1".to_string()),
        _ => None,
    };
    let three = Shard::new(3, 8).unwrap();
    assert_eq!(Shard::resolve(Some("auto/8"), rerun_env).unwrap(), three);
    let refused = Shard::resolve(Some("auto"), rerun_env)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("--shard 3/N"), "{refused}");

    // The first submission: every shard but 3 finishes; shard 3 only gets through part of its
    // input (here: a copy with its second half cut off, as if it had been cancelled).
    let lines = std::fs::read_to_string(&input).unwrap();
    let half: String = lines.lines().take(600).map(|l| format!("{l}\n")).collect();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, half).unwrap();
    for index in 0..8 {
        let shard = Shard::new(index, 8).unwrap();
        let from = if index == 3 { &cut } else { &input };
        job::run(&embedder, &config(from, &output).with_shard(shard)).unwrap();
    }
    let before = job::verify(&output, Some(&input)).unwrap();
    assert!(before.missing > 0, "{before}");

    let rerun = Shard::resolve(Some("3/8"), rerun_env).unwrap();
    let report = job::run(&embedder, &config(&input, &output).with_shard(rerun)).unwrap();
    assert!(report.counts.resumed > 0, "{report}");
    assert_eq!(
        report.counts.embedded,
        report.counts.resumed + before.missing,
        "{report}"
    );
    let check = job::verify(&output, None).unwrap();
    assert!(check.ok(), "{check}");
    assert_expected_ids(&read_output(&output), &expected);
}
