//! What can go wrong between rembed and PostgreSQL, and the connection that tells a bad
//! connection string from an unreachable server.

use std::str::FromStr;

use postgres::{Client, Config, NoTls};

/// Result alias of [`crate::pg`].
pub type Result<T, E = PgError> = std::result::Result<T, E>;

/// What can go wrong between rembed and PostgreSQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// Occurs when the connection string cannot be parsed.
    #[error("bad connection string: {reason}; write it as `host=/run/postgresql user=me dbname=mydb` or `postgresql://me@localhost:5432/mydb`")]
    BadConnectionString {
        /// What the parser said.
        reason: String,
    },
    /// Occurs when the server cannot be reached or refuses the login.
    #[error("cannot connect to PostgreSQL: {source}; check that the server runs and the host, port, user and database of the connection string")]
    Connect {
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },
    /// Occurs when the table does not exist (or is not visible on the search path).
    #[error("table {table} does not exist; check its name (schema.table) and the database of the connection string")]
    MissingTable {
        /// The table as given.
        table: String,
    },
    /// Occurs when the table has no column of that name.
    #[error("table {table} has no column `{column}` (it has: {existing}); give the right --{role} column")]
    MissingColumn {
        /// The table as given.
        table: String,
        /// The missing column.
        column: String,
        /// What the column is for: `id`, `text` or `vector`.
        role: &'static str,
        /// The table's columns, comma-separated.
        existing: String,
    },
    /// Occurs when the vector column holds vectors of another size than the model makes: its
    /// declared dimension (`vector(768)`, `halfvec(768)`) or, for a column without one
    /// (`vector`, `real[]`), the vectors already in it.
    #[error("column {table}.{column} is {found} but model {model} makes {expected}-dimensional vectors; alter the column to vector({expected}) or halfvec({expected}) (empty it if it holds other vectors), or load a model of that size")]
    DimensionMismatch {
        /// The table as given.
        table: String,
        /// The vector column.
        column: String,
        /// The column's type, e.g. `vector(768)`, or `real[] holding 768-dimensional vectors`.
        found: String,
        /// The model's dimension.
        expected: usize,
        /// The model's name.
        model: String,
    },
    /// Occurs when the vector column is neither pgvector's `vector` or `halfvec` nor `real[]`.
    #[error("column {table}.{column} has type {found}; rembed writes pgvector's vector(n) or halfvec(n), or real[] columns")]
    UnsupportedColumnType {
        /// The table as given.
        table: String,
        /// The vector column.
        column: String,
        /// Its type.
        found: String,
    },
    /// Occurs when a separate vector table has no primary key or unique index on the id
    /// column alone, which its upsert (`ON CONFLICT (id)`) needs.
    #[error("table {table} has no primary key or unique index on `{column}` alone; add one (`ALTER TABLE {table} ADD PRIMARY KEY ({column})`) so vectors can be upserted")]
    NoUniqueId {
        /// The vector table as given.
        table: String,
        /// Its id column.
        column: String,
    },
    /// Occurs when an option is out of range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// Occurs when a statement fails on the server or the connection drops.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// Occurs when the embedder fails as a whole (a failed row is recorded instead).
    #[error(transparent)]
    Embed(#[from] crate::Error),
}

/// Connects, telling a bad connection string from an unreachable server.
pub fn connect(conninfo: &str) -> Result<Client> {
    let config = Config::from_str(conninfo).map_err(|e| PgError::BadConnectionString {
        reason: e.to_string(),
    })?;
    config
        .connect(NoTls)
        .map_err(|source| PgError::Connect { source })
}
