//! Model replicas, one per device, and the scheduler that spreads batches over them.
//!
//! Each replica is a full copy of the network on its device. Idle replicas take the next batch
//! from a shared counter, so a faster device simply takes more batches; rows come back with
//! their input index, and the caller puts them in input order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::budget::MemoryBudget;
use crate::error::Result;
use crate::halving::{self, Forward, Outcome};
use crate::models::Network;

/// One copy of the model on one device.
pub(crate) struct Replica {
    pub network: Network,
    pub device: candle_core::Device,
    /// What the device has taught about its memory, kept across calls.
    pub budget: MemoryBudget,
}

/// Runs every batch on some replica, halving a batch that runs out of memory (see
/// [`halving::run`]). With one replica everything runs on the calling thread. Without
/// `keep_going` the first error stops every replica after its current batch.
pub(crate) fn run_spread<T: Send>(
    replicas: &[Replica],
    batches: &[Vec<usize>],
    tokens: &(dyn Fn(usize) -> usize + Sync),
    forward: &Forward<'_, Replica, T>,
    keep_going: bool,
) -> Result<Outcome<T>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let worker = |replica: &Replica| -> Result<Outcome<T>> {
        let mut outcome = Outcome::default();
        while !failed.load(Ordering::Relaxed) {
            let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            if let Err(error) = halving::run(
                replica,
                &replica.budget,
                batch,
                tokens,
                forward,
                keep_going,
                &mut outcome,
            ) {
                failed.store(true, Ordering::Relaxed);
                return Err(error);
            }
        }
        Ok(outcome)
    };

    let outcomes: Vec<Result<Outcome<T>>> = match replicas {
        [only] => vec![worker(only)],
        _ => std::thread::scope(|scope| {
            let handles: Vec<_> = replicas
                .iter()
                .map(|replica| scope.spawn(|| worker(replica)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        }),
    };

    let mut merged = Outcome::default();
    for outcome in outcomes {
        let outcome = outcome?;
        merged.rows.extend(outcome.rows);
        merged.failures.extend(outcome.failures);
        merged.splits += outcome.splits;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::encoder::{Encoder, ModelInput};
    use std::sync::{Barrier, Mutex};

    struct NoModel;

    impl Encoder for NoModel {
        fn forward(&self, _: &ModelInput) -> candle_core::Result<candle_core::Tensor> {
            Err(candle_core::Error::Msg("not used".into()))
        }
    }

    fn replicas(n: usize) -> Vec<Replica> {
        (0..n)
            .map(|_| Replica {
                network: Network::from_encoder(Box::new(NoModel)),
                device: candle_core::Device::Cpu,
                budget: MemoryBudget::default(),
            })
            .collect()
    }

    #[test]
    fn two_replicas_share_the_batches_and_every_row_comes_back() {
        let replicas = replicas(2);
        let batches: Vec<Vec<usize>> = (0..10).map(|b| vec![2 * b, 2 * b + 1]).collect();
        // Both replicas must hold a batch at once before either goes on, so both take part.
        let barrier = Barrier::new(2);
        let first_call = Mutex::new(std::collections::HashSet::new());
        let forward = |replica: &Replica, rows: &[usize]| {
            let id = replica as *const Replica as usize;
            if first_call.lock().unwrap().insert(id) {
                barrier.wait();
            }
            Ok(rows.iter().map(|&i| (i * 10, id)).collect())
        };
        let outcome = run_spread(&replicas, &batches, &|_| 1, &forward, false).unwrap();
        let mut rows: Vec<_> = outcome.rows.iter().map(|&(i, (v, _))| (i, v)).collect();
        rows.sort_unstable();
        assert_eq!(rows, (0..20).map(|i| (i, i * 10)).collect::<Vec<_>>());
        let used: std::collections::HashSet<usize> =
            outcome.rows.iter().map(|(_, (_, id))| *id).collect();
        assert_eq!(used.len(), 2);
    }

    #[test]
    fn an_error_stops_the_run_and_oom_still_halves() {
        let replicas = replicas(2);
        let batches: Vec<Vec<usize>> = vec![vec![0, 1, 2, 3], vec![4], vec![5]];
        let forward = |_: &Replica, rows: &[usize]| {
            if rows.len() > 2 {
                Err(crate::oom::simulated_for_test())
            } else if rows == [5] {
                Err(candle_core::Error::Msg("kernel failed".into()))
            } else {
                Ok(rows.to_vec())
            }
        };
        let Err(err) = run_spread(&replicas, &batches, &|_| 1, &forward, false) else {
            panic!("the kernel failure must stop the run");
        };
        assert!(err.to_string().contains("kernel failed"), "{err}");

        let outcome = run_spread(&replicas, &batches, &|_| 1, &forward, true).unwrap();
        assert_eq!(outcome.splits, 1);
        assert_eq!(outcome.rows.len(), 5);
        assert_eq!(outcome.failures.len(), 1);
        assert_eq!(outcome.failures[0].index, 5);
    }
}
