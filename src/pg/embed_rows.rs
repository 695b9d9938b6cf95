//! Embeds a batch of rows read from the database, keeping rows that fail apart so that one
//! bad text never stops the others.

use std::collections::HashSet;

use crate::pg::error::Result;
use crate::pg::writer::Embedded;
use crate::{Embedder, Prompt, Request};

/// A failed row: (id as text, reason).
pub(crate) type Failure = (String, String);

/// The request rows get: documents with `prompt`, failures recorded per row.
pub(crate) fn request(prompt: &Prompt) -> Request {
    Request::documents()
        .with_prompt(prompt.clone())
        .keep_going(true)
}

/// Embeds `rows` (id, text); returns the vectors of those that worked and the failures.
pub(crate) fn embed_rows(
    embedder: &Embedder,
    request: &Request,
    rows: &[(String, String)],
) -> Result<(Vec<Embedded>, Vec<Failure>)> {
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let out = embedder.embed_with(&texts, request)?;
    let failed: HashSet<usize> = out.failures.iter().map(|f| f.index).collect();
    let failures = out
        .failures
        .iter()
        .map(|f| (rows[f.index].0.clone(), f.reason.clone()))
        .collect();
    let vectors = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| !failed.contains(i))
        .map(|(i, (id, text))| Embedded::new(id.clone(), text, out.dense.row(i).to_vec()))
        .collect();
    Ok((vectors, failures))
}
