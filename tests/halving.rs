//! Out-of-memory halving through the real embedder on the CPU: a simulated out-of-memory rule
//! (`Options::with_simulated_oom`) fails chosen forward passes before they run, and every run
//! must give the rows of a run without failures, in input order, or name the input that cannot
//! fit even alone.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::{assert_same_rows, fixture, reference};
use rembed::{Device, Embedder, Error, FailureKind, Options, Request};

fn texts() -> Vec<String> {
    reference(fixture("bert-mean/reference.json")).texts
}

fn options() -> Options {
    Options::default().with_device(Device::Cpu)
}

fn load(options: Options) -> Embedder {
    Embedder::load(fixture("bert-mean").to_str().unwrap(), options).unwrap()
}

/// The batches a run sent to the network (input indices, sorted), in the order they ran.
fn recorded(
    options: Options,
    fail: impl Fn(&[usize]) -> bool + Send + Sync + 'static,
) -> (Options, Arc<Mutex<Vec<Vec<usize>>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    let options = options.with_simulated_oom(move |rows: &[usize], _| {
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        seen.lock().unwrap().push(sorted);
        fail(rows)
    });
    (options, log)
}

/// Every input exactly once among the batches that did not fail.
fn assert_each_input_ran_once(
    batches: &[Vec<usize>],
    failed: &dyn Fn(&[usize]) -> bool,
    count: usize,
) {
    let mut ran: Vec<usize> = batches
        .iter()
        .filter(|b| !failed(b))
        .flatten()
        .copied()
        .collect();
    ran.sort_unstable();
    assert_eq!(ran, (0..count).collect::<Vec<_>>(), "{batches:?}");
}

#[test]
fn an_odd_batch_halves_down_to_what_fits_and_keeps_every_row() {
    // 7, 5 and 3 inputs in one batch: halves of unequal sizes at every level.
    for count in [7usize, 5, 3] {
        let texts: Vec<String> = texts().into_iter().take(count).collect();
        let unconstrained = load(options()).embed(&texts).unwrap();
        let fails = |rows: &[usize]| rows.len() > 1;
        let (options, log) = recorded(options().with_max_batch_tokens(1 << 20), fails);
        let out = load(options)
            .embed_with(&texts, &Request::default())
            .unwrap();
        assert_same_rows(
            &format!("{count} inputs"),
            &out.dense,
            &unconstrained,
            0.99999,
        );
        assert!(out.failures.is_empty());
        assert_eq!(out.splits, count - 1, "a binary tree over {count} leaves");
        assert_each_input_ran_once(&log.lock().unwrap(), &fails, count);
    }
}

#[test]
fn a_failure_in_the_first_middle_or_last_batch_leaves_the_others_alone() {
    let texts = texts();
    let unconstrained = load(options()).embed(&texts).unwrap();
    // Small budgets make several batches; find them from a run without failures.
    let (plain, log) = recorded(options().with_max_batch_tokens(60), |_| false);
    load(plain).embed(&texts).unwrap();
    let batches = log.lock().unwrap().clone();
    assert!(batches.len() >= 3, "{batches:?}");
    let (first, middle, last) = (
        batches[0].clone(),
        batches[batches.len() / 2].clone(),
        batches[batches.len() - 1].clone(),
    );
    for (label, target) in [("first", first), ("middle", middle), ("last", last)] {
        let target: HashSet<usize> = target.into_iter().collect();
        let fails = move |rows: &[usize]| rows.len() > 1 && rows.iter().all(|r| target.contains(r));
        let (options, _) = recorded(options().with_max_batch_tokens(60), fails);
        let out = load(options)
            .embed_with(&texts, &Request::default())
            .unwrap();
        assert_same_rows(label, &out.dense, &unconstrained, 0.99999);
        assert!(out.splits >= 1, "{label}: the batch was halved");
    }
}

#[test]
fn failures_several_in_a_row_go_down_to_single_inputs() {
    let texts = texts();
    let unconstrained = load(options()).embed(&texts).unwrap();
    let fails = |rows: &[usize]| rows.len() > 1;
    let (options, log) = recorded(options().with_max_batch_tokens(60), fails);
    let out = load(options)
        .embed_with(&texts, &Request::default())
        .unwrap();
    assert_same_rows("every batch halved", &out.dense, &unconstrained, 0.99999);
    let batches = log.lock().unwrap();
    assert!(batches.iter().filter(|b| b.len() == 1).count() == texts.len());
    assert_each_input_ran_once(&batches, &fails, texts.len());
}

#[test]
fn an_input_that_fits_nowhere_is_named_and_the_rest_survive() {
    let texts = texts();
    let unconstrained = load(options()).embed(&texts).unwrap();
    let tokens = load(options())
        .tokenize(&texts, &Request::documents())
        .unwrap();
    for victim in [0usize, 6, texts.len() - 1] {
        let fails = move |rows: &[usize]| rows.contains(&victim);
        let (failing, _) = recorded(options().with_max_batch_tokens(60), fails);
        let embedder = load(failing);
        let err = embedder.embed(&texts).unwrap_err();
        assert!(
            matches!(&err, Error::OutOfMemory { index, tokens: t, .. }
                if *index == victim && *t == tokens[victim].len()),
            "{err}"
        );

        let out = embedder
            .embed_with(&texts, &Request::default().keep_going(true))
            .unwrap();
        assert_eq!(out.failures.len(), 1);
        assert_eq!(out.failures[0].index, victim);
        assert_eq!(out.failures[0].kind, FailureKind::OutOfMemory);
        assert!(out.dense.row(victim).iter().all(|&v| v == 0.0));
        for i in (0..texts.len()).filter(|&i| i != victim) {
            let cos = common::cosine(out.dense.row(i), unconstrained.row(i));
            assert!(
                cos >= 0.99999,
                "input {i} beside failed input {victim}: {cos}"
            );
        }
    }
}

#[test]
fn two_replicas_halve_independently_and_keep_input_order() {
    let texts = texts();
    let unconstrained = load(options()).embed(&texts).unwrap();
    let options = options()
        .with_devices([Device::Cpu, Device::Cpu])
        .with_max_batch_tokens(60)
        .with_simulated_oom(|rows: &[usize], _| rows.len() > 1 && rows.len() % 2 == 1);
    let out = load(options)
        .embed_with(&texts, &Request::default())
        .unwrap();
    assert_same_rows("two replicas", &out.dense, &unconstrained, 0.99999);
}
