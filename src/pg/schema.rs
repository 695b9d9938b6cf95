//! Checks a [`Target`] against the database and the model before any work starts (table,
//! columns, the vector column's type and dimension, the vector table's unique id), then creates
//! what rembed keeps there: the runs table, the run and hash columns, the vector table.

use postgres::Client;

use crate::pg::error::{PgError, Result};
use crate::pg::runs::{self, RUNS_TABLE};
use crate::pg::target::Target;

/// `"a"."b"` from `a.b`; quotes doubled.
pub(crate) fn quote_name(name: &str) -> String {
    name.split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How the vector column takes a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VectorKind {
    /// pgvector `vector` (any dimension when the column has none).
    Vector,
    /// pgvector `halfvec`: 16-bit floats, half the space.
    HalfVec,
    /// `real[]`, where pgvector is not installed.
    Real,
}

impl VectorKind {
    /// The type without a dimension, as the batch table's column has it.
    pub(crate) fn sql_type(self) -> &'static str {
        match self {
            Self::Vector => "vector",
            Self::HalfVec => "halfvec",
            Self::Real => "real[]",
        }
    }
}

/// The target, checked against the database and the model, with its SQL pieces quoted.
pub(crate) struct Checked {
    /// The source table.
    pub table: String,
    pub id: String,
    pub text: String,
    pub id_type: String,
    /// ` AND (filter)`, or empty.
    pub filter: String,
    /// The table that holds the vector, run and hash columns: `table` in place, else the
    /// vector table (whose id column is named `id` too).
    pub out: String,
    pub separate: bool,
    pub vector: String,
    pub run: String,
    pub hash: String,
    pub kind: VectorKind,
    /// `table.vector` as given, for the runs table.
    pub label: String,
}

/// The SQL of the SHA-256 of a text column, as [`crate::pg::Embedded::new`] computes it.
pub(crate) fn hash_of(text: &str) -> String {
    format!("sha256(convert_to({text}, 'UTF8'))")
}

impl Checked {
    /// The condition, on the source table's rows, of those that need a vector: text set, and
    /// no vector, or one made from another text. A vector without a hash (written by other
    /// tools) is kept.
    pub(crate) fn pending(&self) -> String {
        let Checked {
            table,
            id,
            text,
            out,
            vector,
            hash,
            filter,
            ..
        } = self;
        let current = hash_of(&format!("{table}.{text}"));
        if self.separate {
            format!(
                "{table}.{text} IS NOT NULL{filter} AND NOT EXISTS (SELECT 1 FROM {out} o \
                 WHERE o.{id} = {table}.{id} AND o.{vector} IS NOT NULL \
                 AND (o.{hash} IS NULL OR o.{hash} = {current}))"
            )
        } else {
            format!(
                "{table}.{text} IS NOT NULL{filter} AND ({table}.{vector} IS NULL \
                 OR {table}.{hash} <> {current})"
            )
        }
    }
}

type Columns = Vec<(String, String)>;

/// The table's oid and (column, type) pairs, or `None` when it does not exist.
fn columns_of(client: &mut Client, quoted: &str) -> Result<Option<(u32, Columns)>> {
    let oid: Option<u32> = client
        .query_one("SELECT to_regclass($1)::oid", &[&quoted])?
        .get(0);
    let Some(oid) = oid else {
        return Ok(None);
    };
    let columns = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(Some((oid, columns)))
}

fn type_of(table: &str, columns: &Columns, column: &str, role: &'static str) -> Result<String> {
    columns
        .iter()
        .find(|(name, _)| name == column)
        .map(|(_, ty)| ty.clone())
        .ok_or_else(|| PgError::MissingColumn {
            table: table.into(),
            column: column.into(),
            role,
            existing: columns
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The model whose vectors are checked: its dimension and name.
pub(crate) struct Model<'a> {
    pub dim: usize,
    pub name: &'a str,
}

/// The vector column's kind, refusing another type and another dimension: the declared one,
/// or, for a column without one, that of a vector already in it.
fn kind_of(
    client: &mut Client,
    (table, quoted): (&str, &str),
    column: &str,
    found: String,
    model: &Model<'_>,
) -> Result<VectorKind> {
    let unsupported = |found: String| PgError::UnsupportedColumnType {
        table: table.into(),
        column: column.into(),
        found,
    };
    let mismatch = |found: String| PgError::DimensionMismatch {
        table: table.into(),
        column: column.into(),
        found,
        expected: model.dim,
        model: model.name.into(),
    };
    let (kind, rest) = if found == "real[]" {
        (VectorKind::Real, "")
    } else if let Some(rest) = found.strip_prefix("vector") {
        (VectorKind::Vector, rest)
    } else if let Some(rest) = found.strip_prefix("halfvec") {
        (VectorKind::HalfVec, rest)
    } else {
        return Err(unsupported(found));
    };
    if !rest.is_empty() {
        let declared = rest
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|n| n.parse::<usize>().ok());
        return match declared {
            None => Err(unsupported(found)),
            Some(n) if n != model.dim => Err(mismatch(found)),
            Some(_) => Ok(kind),
        };
    }
    let dims = match kind {
        VectorKind::Real => "cardinality",
        VectorKind::Vector | VectorKind::HalfVec => "vector_dims",
    };
    let column_q = quote_ident(column);
    let held: Option<i32> = client
        .query_opt(
            &format!(
                "SELECT {dims}({column_q}) FROM {quoted} WHERE {column_q} IS NOT NULL LIMIT 1"
            ),
            &[],
        )?
        .and_then(|r| r.get(0));
    match held {
        Some(n) if n as usize != model.dim => {
            Err(mismatch(format!("{found} holding {n}-dimensional vectors")))
        }
        _ => Ok(kind),
    }
}

/// Whether `column` of the table `oid` alone has a primary key or unique index.
fn has_unique_index(client: &mut Client, oid: u32, column: &str) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a \
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
             WHERE i.indrelid = $1 AND i.indisunique AND i.indnkeyatts = 1 \
               AND i.indpred IS NULL AND a.attname = $2)",
            &[&oid, &column],
        )?
        .get(0))
}

/// Refuses a target whose tables, columns or vector dimension do not fit before any work
/// starts; then creates what is missing (see [`setup`]).
pub(crate) fn check(client: &mut Client, target: &Target, model: &Model<'_>) -> Result<Checked> {
    let table = quote_name(&target.table);
    let Some((_, columns)) = columns_of(client, &table)? else {
        return Err(PgError::MissingTable {
            table: target.table.clone(),
        });
    };
    let id_type = type_of(&target.table, &columns, &target.id, "id")?;
    type_of(&target.table, &columns, &target.text, "text")?;
    let (out, out_name, out_columns, kind, create) = match &target.vector_table {
        None => {
            let ty = type_of(&target.table, &columns, &target.vector, "vector")?;
            let kind = kind_of(
                client,
                (target.table.as_str(), table.as_str()),
                &target.vector,
                ty,
                model,
            )?;
            (table.clone(), &target.table, Some(columns), kind, false)
        }
        Some(name) => {
            let quoted = quote_name(name);
            match columns_of(client, &quoted)? {
                Some((oid, vt_columns)) => {
                    type_of(name, &vt_columns, &target.id, "id")?;
                    let ty = type_of(name, &vt_columns, &target.vector, "vector")?;
                    let kind = kind_of(
                        client,
                        (name.as_str(), quoted.as_str()),
                        &target.vector,
                        ty,
                        model,
                    )?;
                    if !has_unique_index(client, oid, &target.id)? {
                        return Err(PgError::NoUniqueId {
                            table: name.clone(),
                            column: target.id.clone(),
                        });
                    }
                    (quoted, name, Some(vt_columns), kind, false)
                }
                None => {
                    let pgvector: Option<u32> = client
                        .query_one("SELECT to_regtype('vector')::oid", &[])?
                        .get(0);
                    let kind = match pgvector {
                        Some(_) => VectorKind::Vector,
                        None => VectorKind::Real,
                    };
                    (quoted, name, None, kind, true)
                }
            }
        }
    };
    let missing = |column: &str| {
        out_columns
            .as_ref()
            .is_some_and(|cs| !cs.iter().any(|(n, _)| n == column))
    };
    let add_run = missing(&target.run_column);
    let add_hash = missing(&target.hash_column);
    let checked = Checked {
        id: quote_ident(&target.id),
        text: quote_ident(&target.text),
        vector: quote_ident(&target.vector),
        run: quote_ident(&target.run_column),
        hash: quote_ident(&target.hash_column),
        id_type,
        kind,
        filter: target
            .filter
            .as_ref()
            .map(|f| format!(" AND ({f})"))
            .unwrap_or_default(),
        separate: target.vector_table.is_some(),
        label: format!("{out_name}.{}", target.vector),
        table,
        out,
    };
    setup(client, &checked, create, add_run, add_hash, model.dim)?;
    Ok(checked)
}

/// Creates the runs table, the vector table, and the run and hash columns if missing, under an
/// advisory lock so that workers starting together do not race on `CREATE`/`ALTER`.
fn setup(
    client: &mut Client,
    t: &Checked,
    create: bool,
    add_run: bool,
    add_hash: bool,
    dim: usize,
) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(7265626564)", &[])?;
    runs::create_table(&mut tx)?;
    let Checked {
        out,
        id,
        id_type,
        vector,
        run,
        hash,
        ..
    } = t;
    if create {
        let vector_type = match t.kind {
            VectorKind::Real => "real[]".to_string(),
            kind => format!("{}({dim})", kind.sql_type()),
        };
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {out} ({id} {id_type} PRIMARY KEY, \
             {vector} {vector_type}, {run} bigint REFERENCES {RUNS_TABLE}(id), {hash} bytea)"
        ))?;
    }
    if add_run {
        tx.batch_execute(&format!(
            "ALTER TABLE {out} ADD COLUMN IF NOT EXISTS {run} bigint REFERENCES {RUNS_TABLE}(id)"
        ))?;
    }
    if add_hash {
        tx.batch_execute(&format!(
            "ALTER TABLE {out} ADD COLUMN IF NOT EXISTS {hash} bytea"
        ))?;
    }
    tx.commit()?;
    Ok(())
}
