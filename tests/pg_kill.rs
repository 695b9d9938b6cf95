//! Workers killed with SIGKILL at random points, again and again, then a last run: every row
//! is embedded exactly once, with its own text's vector, and the runs' counts add up to the
//! rows that reference each run. In one scan at a time (in place), and with three queue
//! workers draining one queue at once, one of them killed at a time.
//!
//! Workers run in child processes: this test binary re-executes itself with
//! `REMBED_PG_KILL_CHILD` set, and in the child the same test function only runs the worker.
//! Set `REMBED_PG_KILL_SEED` to replay a failing run's kill points. Against a real PostgreSQL
//! + pgvector (see `pg_support`).

mod common;
mod pg_support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fixture;
use pg_support::Server;
use rembed::pg::{self, QueueOptions, ScanOptions, Target, Worker};
use rembed::{Device, Embedder, Options};

const CHILD: &str = "REMBED_PG_KILL_CHILD";
const ROWS: usize = 1500;
const BATCH: usize = 16;
const LEASE: Duration = Duration::from_secs(1);
const KILLS: usize = 6;

fn load() -> Embedder {
    Embedder::load(
        fixture("bert-mean").to_str().unwrap(),
        Options::default().with_device(Device::Cpu),
    )
    .unwrap()
}

fn target() -> Target {
    Target::new("reviews", "id", "body", "embedding")
}

fn queue_options() -> QueueOptions {
    // Attempts without limit: a row may be claimed by several workers that are all killed.
    QueueOptions::default()
        .with_batch_rows(BATCH)
        .with_lease(LEASE)
        .with_max_attempts(1000)
}

/// In the child: the worker of `mode` on the server at `conninfo`, to its end or its kill.
fn child(spec: &str) {
    let (mode, conninfo) = spec.split_once('\n').unwrap();
    let embedder = load();
    match mode {
        "scan" => {
            let options = ScanOptions::default().with_batch_rows(BATCH);
            pg::embed_table(&embedder, conninfo, &target(), &options).unwrap();
        }
        _ => {
            let mut worker = Worker::new(&embedder, conninfo, &target(), queue_options()).unwrap();
            worker.drain().unwrap();
            worker.finish().unwrap();
        }
    }
}

fn spawn(test: &str, mode: &str, conninfo: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, format!("{mode}\n{conninfo}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// xorshift64*: reproducible kill points from a printed seed.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("REMBED_PG_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("REMBED_PG_KILL_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn text(i: usize) -> String {
    format!("review number {i} says the product is fine")
}

fn has_text(i: usize) -> bool {
    i % 7 != 3
}

/// `reviews` with `ROWS` rows, every seventh text NULL, and a vector column of the model's size.
fn reviews(server: &Server, dim: usize) {
    server
        .client()
        .batch_execute(&format!(
            "CREATE TABLE reviews (id bigint PRIMARY KEY, body text, embedding vector({dim}));
             INSERT INTO reviews SELECT i, CASE WHEN i % 7 = 3 THEN NULL
                 ELSE 'review number ' || i || ' says the product is fine' END
             FROM generate_series(0, {}) i",
            ROWS - 1
        ))
        .unwrap();
}

/// Rows with a vector so far.
fn progress(client: &mut postgres::Client) -> usize {
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM reviews WHERE embedding IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    n as usize
}

/// Waits until `rows` rows have a vector (or `child` ended), plus a random few milliseconds to
/// land anywhere in a batch, then SIGKILLs `child` if it still runs; returns whether it did.
fn kill_after(
    client: &mut postgres::Client,
    child: &mut Child,
    rows: usize,
    rng: &mut Rng,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while progress(client) < rows && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(rng.below(30)));
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    // SIGKILL: no destructor, no rollback sent, the connection just drops.
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!("killed a worker at {} rows", progress(client));
    true
}

/// The next kill point: a few batches on from now, or the end on the last kill.
fn next_point(client: &mut postgres::Client, kills: usize, rng: &mut Rng) -> usize {
    let total = (0..ROWS).filter(|i| has_text(*i)).count();
    match kills {
        0 => 0,
        k if k == KILLS - 1 => total,
        _ => (progress(client) + BATCH * (1 + rng.below(4) as usize)).min(total - 1),
    }
}

/// Every row with a text has its text's vector and a run; each run's `rows_written` equals
/// the rows that reference it, so no row was written twice (a second write would have moved
/// it to another run or counted it twice) and none was lost.
fn assert_exactly_once(server: &Server, embedder: &Embedder) {
    let texts: Vec<String> = (0..ROWS).filter(|i| has_text(*i)).map(text).collect();
    let expected = embedder.embed(&texts).unwrap();
    let rows: HashMap<i64, (Option<Vec<f32>>, Option<i64>)> = server
        .client()
        .query(
            "SELECT id, embedding::real[], embedding_run FROM reviews",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut per_run: HashMap<i64, i64> = HashMap::new();
    let mut n = 0;
    for i in 0..ROWS {
        let (vector, run) = &rows[&(i as i64)];
        if !has_text(i) {
            assert!(vector.is_none() && run.is_none(), "row {i} has no text");
            continue;
        }
        let vector = vector.as_ref().unwrap_or_else(|| panic!("row {i} lost"));
        for (x, y) in vector.iter().zip(expected.row(n).iter()) {
            assert!((x - y).abs() < 1e-4, "row {i}: {x} vs {y}");
        }
        n += 1;
        *per_run
            .entry(run.unwrap_or_else(|| panic!("row {i} has no run")))
            .or_default() += 1;
    }
    let counted: HashMap<i64, i64> = server
        .client()
        .query(
            "SELECT id, rows_written FROM rembed_runs WHERE rows_written > 0",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(counted, per_run, "runs' counts vs rows referencing them");
    // The killed workers had committed batches of their own: the kills landed mid-run.
    assert!(counted.len() >= 3, "runs that wrote rows: {counted:?}");
}

#[test]
fn sigkill_of_a_scan_at_random_points_then_a_last_run_embeds_each_row_once() {
    const NAME: &str = "sigkill_of_a_scan_at_random_points_then_a_last_run_embeds_each_row_once";
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let mut rng = Rng::from_env();
    let server = Server::start();
    let embedder = load();
    reviews(&server, embedder.dim());
    let conninfo = server.conninfo();
    let mut client = server.client();
    let mut kills = 0;
    while kills < KILLS {
        let point = next_point(&mut client, kills, &mut rng);
        let mut worker = spawn(NAME, "scan", &conninfo);
        if kill_after(&mut client, &mut worker, point, &mut rng) {
            kills += 1;
        } else {
            break;
        }
    }
    assert!(kills >= KILLS - 1, "only {kills} kills landed");
    let status = spawn(NAME, "scan", &conninfo).wait().unwrap();
    assert!(status.success(), "the last run failed: {status}");
    assert_exactly_once(&server, &embedder);
}

#[test]
fn sigkill_of_queue_workers_while_three_drain_one_queue_loses_and_repeats_nothing() {
    const NAME: &str =
        "sigkill_of_queue_workers_while_three_drain_one_queue_loses_and_repeats_nothing";
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let mut rng = Rng::from_env();
    let server = Server::start();
    let embedder = load();
    reviews(&server, embedder.dim());
    let conninfo = server.conninfo();
    pg::create_queue(&conninfo, "rembed_queue").unwrap();
    let mut filler = Worker::new(&embedder, &conninfo, &target(), queue_options()).unwrap();
    let queued = filler.enqueue_missing().unwrap();
    filler.finish().unwrap();
    assert_eq!(queued as usize, (0..ROWS).filter(|i| has_text(*i)).count());

    let mut client = server.client();
    let mut workers: Vec<Child> = (0..3).map(|_| spawn(NAME, "queue", &conninfo)).collect();
    let mut kills = 0;
    while kills < KILLS {
        let point = next_point(&mut client, kills, &mut rng);
        let victim = rng.below(3) as usize;
        if kill_after(&mut client, &mut workers[victim], point, &mut rng) {
            kills += 1;
            workers[victim] = spawn(NAME, "queue", &conninfo);
        } else if workers.iter_mut().all(|w| w.try_wait().unwrap().is_some()) {
            break;
        }
    }
    assert!(kills >= KILLS - 1, "only {kills} kills landed");
    for mut worker in workers {
        assert!(
            worker.wait().unwrap().success(),
            "a worker that was not killed failed"
        );
    }
    // The killed workers' leases expire; a last worker reclaims and finishes their rows.
    std::thread::sleep(LEASE + Duration::from_millis(200));
    let status = spawn(NAME, "queue", &conninfo).wait().unwrap();
    assert!(status.success(), "the last worker failed: {status}");

    let states: Vec<(String, String, Option<i64>, Option<i64>)> = server
        .client()
        .query(
            "SELECT q.id, q.status, q.run, r.embedding_run FROM rembed_queue q \
             JOIN reviews r ON r.id = q.id::bigint",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(states.len(), queued as usize);
    for (id, status, queue_run, row_run) in states {
        assert_eq!(status, "done", "id {id}");
        assert_eq!(
            queue_run, row_run,
            "id {id}: the run that marked it done wrote it"
        );
    }
    assert_exactly_once(&server, &embedder);
}
