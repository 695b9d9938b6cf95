//! Embeds a table by keyset pagination over its id: every row whose text is set and whose
//! vector is missing or was made from another text, in id order, one transaction per batch.

use crate::pg::embed_rows::{embed_rows, request};
use crate::pg::error::{PgError, Result};
use crate::pg::runs::RunInfo;
use crate::pg::target::{RunReport, ScanOptions, Target};
use crate::pg::writer::Writer;
use crate::Embedder;

/// Embeds every row of `target` whose text is set and whose vector is missing or stale (its
/// text changed since), in id order, and writes the vectors in place or to the target's
/// vector table; see [`crate::pg`]. Rows that fail are left as they are (a rerun tries them
/// again) and listed in the report.
pub fn embed_table(
    embedder: &Embedder,
    conninfo: &str,
    target: &Target,
    options: &ScanOptions,
) -> Result<RunReport> {
    if options.batch_rows == 0 {
        return Err(PgError::InvalidOption {
            option: "batch_rows",
            reason: "must be at least 1".into(),
        });
    }
    let info = RunInfo::of(embedder, &options.prompt)?;
    let mut writer = Writer::open(conninfo, target, &info)?;
    let request = request(&options.prompt);
    let t = &writer.t;
    // The id column qualified: the output column `id::text` would sort as text.
    let page = |after: &str| {
        format!(
            "SELECT {table}.{id}::text, {table}.{text}::text FROM {table} \
             WHERE {after}{pending} ORDER BY {table}.{id} LIMIT {limit}",
            table = t.table,
            id = t.id,
            text = t.text,
            pending = t.pending(),
            limit = options.batch_rows,
        )
    };
    let first = page("");
    let next = page(&format!(
        "{}.{} > CAST($1::text AS {}) AND ",
        t.table, t.id, t.id_type
    ));
    let mut last: Option<String> = None;
    loop {
        if options
            .max_batches
            .is_some_and(|max| writer.report.batches as usize >= max)
        {
            break;
        }
        let rows: Vec<(String, String)> = match &last {
            None => writer.client.query(&first, &[])?,
            Some(last) => writer.client.query(&next, &[last])?,
        }
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        let Some((last_id, _)) = rows.last() else {
            break;
        };
        last = Some(last_id.clone());
        let (vectors, failures) = embed_rows(embedder, &request, &rows)?;
        writer.write_batch(vectors, failures, last.as_deref())?;
    }
    writer.finish()
}
