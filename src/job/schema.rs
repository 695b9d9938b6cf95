//! The metadata columns of the output: which fields become columns, of what type, and how a
//! record's fields are put into them.
//!
//! Parquet needs one schema per file, and readers of a directory want one schema for all files
//! (pyarrow and polars refuse or drop columns otherwise). JSONL has none, so the columns are
//! inferred once from the first records of the input (see [`super::sample`]), independently of
//! the shard so that every shard agrees, stored in the manifest and reused on resume. Nothing is lost when later records
//! do not fit: a field that is not a column, or whose value does not fit its column's type, goes
//! into the `metadata_extra` column as JSON.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::ArrayRef;
use arrow_schema::{DataType, Field};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::input::Record;

/// Column names the job itself writes; input fields of these names go to `metadata_extra`.
pub(crate) const ID: &str = "id";
pub(crate) const EXTRA: &str = "metadata_extra";
pub(crate) const EMBEDDING: &str = "embedding";

/// The Arrow type of a metadata column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ColumnType {
    /// JSON booleans.
    Boolean,
    /// JSON integers that fit in i64.
    Int64,
    /// JSON numbers, some of them fractional.
    Float64,
    /// JSON strings.
    String,
    /// Anything else (arrays, objects, mixed types), as JSON text.
    Json,
}

/// One metadata column: an input field kept in the output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetaColumn {
    /// The field's name, also the column's.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
}

/// Infers metadata columns from the first records of the input.
pub(crate) fn infer<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<MetaColumn> {
    // Per field, in order of first appearance: which JSON kinds were seen.
    let mut seen: Vec<(String, Kinds)> = Vec::new();
    for record in records {
        for (name, value) in &record.fields {
            if [ID, EXTRA, EMBEDDING].contains(&name.as_str()) {
                continue;
            }
            let index = match seen.iter().position(|(n, _)| n == name) {
                Some(index) => index,
                None => {
                    seen.push((name.clone(), Kinds::default()));
                    seen.len() - 1
                }
            };
            seen[index].1.add(value);
        }
    }
    seen.into_iter()
        .map(|(name, kinds)| MetaColumn {
            name,
            column_type: kinds.column_type(),
        })
        .collect()
}

#[derive(Default)]
struct Kinds {
    boolean: bool,
    integer: bool,
    float: bool,
    string: bool,
    other: bool,
}

impl Kinds {
    fn add(&mut self, value: &Value) {
        match value {
            Value::Null => {}
            Value::Bool(_) => self.boolean = true,
            Value::Number(n) if n.as_i64().is_some() => self.integer = true,
            Value::Number(_) => self.float = true,
            Value::String(_) => self.string = true,
            Value::Array(_) | Value::Object(_) => self.other = true,
        }
    }

    fn column_type(&self) -> ColumnType {
        match (
            self.boolean,
            self.integer,
            self.float,
            self.string,
            self.other,
        ) {
            (true, false, false, false, false) => ColumnType::Boolean,
            (false, true, false, false, false) => ColumnType::Int64,
            (false, _, true, false, false) => ColumnType::Float64,
            (false, false, false, true, false) => ColumnType::String,
            _ => ColumnType::Json,
        }
    }
}

/// The Arrow fields of the metadata columns, `metadata_extra` last.
pub(crate) fn fields(columns: &[MetaColumn]) -> Vec<Field> {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let data_type = match c.column_type {
                ColumnType::Boolean => DataType::Boolean,
                ColumnType::Int64 => DataType::Int64,
                ColumnType::Float64 => DataType::Float64,
                ColumnType::String | ColumnType::Json => DataType::Utf8,
            };
            Field::new(&c.name, data_type, true)
        })
        .collect();
    fields.push(Field::new(EXTRA, DataType::Utf8, true));
    fields
}

enum Builder {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder, ColumnType),
}

/// Accumulates the metadata of a batch of records into Arrow arrays.
pub(crate) struct MetaBuilders {
    names: Vec<String>,
    builders: Vec<Builder>,
    extra: StringBuilder,
}

impl MetaBuilders {
    pub(crate) fn new(columns: &[MetaColumn]) -> Self {
        let builders = columns
            .iter()
            .map(|c| match c.column_type {
                ColumnType::Boolean => Builder::Boolean(BooleanBuilder::new()),
                ColumnType::Int64 => Builder::Int64(Int64Builder::new()),
                ColumnType::Float64 => Builder::Float64(Float64Builder::new()),
                t @ (ColumnType::String | ColumnType::Json) => {
                    Builder::Utf8(StringBuilder::new(), t)
                }
            })
            .collect();
        Self {
            names: columns.iter().map(|c| c.name.clone()).collect(),
            builders,
            extra: StringBuilder::new(),
        }
    }

    /// Appends one record's fields: each column takes its value if it fits, and what is left
    /// goes to `metadata_extra`.
    pub(crate) fn push(&mut self, mut fields: Map<String, Value>) {
        for (name, builder) in self.names.iter().zip(&mut self.builders) {
            let value = fields.remove(name).unwrap_or(Value::Null);
            let misfit = append(builder, value);
            if let Some(value) = misfit {
                fields.insert(name.clone(), value);
            }
        }
        if fields.is_empty() {
            self.extra.append_null();
        } else {
            self.extra.append_value(Value::Object(fields).to_string());
        }
    }

    /// The arrays built so far, in [`fields`] order; the builders start empty again.
    pub(crate) fn finish(&mut self) -> Vec<ArrayRef> {
        let mut arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Boolean(b) => Arc::new(b.finish()),
                    Builder::Int64(b) => Arc::new(b.finish()),
                    Builder::Float64(b) => Arc::new(b.finish()),
                    Builder::Utf8(b, _) => Arc::new(b.finish()),
                }
            })
            .collect();
        arrays.push(Arc::new(self.extra.finish()));
        arrays
    }
}

/// Appends `value` if it fits the column, else a null; returns the misfit.
fn append(builder: &mut Builder, value: Value) -> Option<Value> {
    match (builder, value) {
        (b, Value::Null) => append_null(b),
        (Builder::Boolean(b), Value::Bool(v)) => b.append_value(v),
        (Builder::Int64(b), Value::Number(n)) if n.as_i64().is_some() => {
            b.append_option(n.as_i64())
        }
        (Builder::Float64(b), Value::Number(n)) => b.append_option(n.as_f64()),
        (Builder::Utf8(b, ColumnType::String), Value::String(s)) => b.append_value(s),
        (Builder::Utf8(b, ColumnType::Json), value) => b.append_value(value.to_string()),
        (b, value) => {
            append_null(b);
            return Some(value);
        }
    }
    None
}

fn append_null(builder: &mut Builder) {
    match builder {
        Builder::Boolean(b) => b.append_null(),
        Builder::Int64(b) => b.append_null(),
        Builder::Float64(b) => b.append_null(),
        Builder::Utf8(b, _) => b.append_null(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array, StringArray};
    use serde_json::json;

    #[test]
    fn infers_types_and_keeps_misfits_in_extra() {
        let mut kinds = Kinds::default();
        [json!(1), json!(null), json!(2)]
            .iter()
            .for_each(|v| kinds.add(v));
        assert_eq!(kinds.column_type(), ColumnType::Int64);
        kinds.add(&json!(1.5));
        assert_eq!(kinds.column_type(), ColumnType::Float64);
        kinds.add(&json!("x"));
        assert_eq!(kinds.column_type(), ColumnType::Json);

        let columns = [MetaColumn {
            name: "n".into(),
            column_type: ColumnType::Int64,
        }];
        let mut builders = MetaBuilders::new(&columns);
        let record = |v: Value| v.as_object().cloned().unwrap();
        builders.push(record(json!({"n": 3})));
        builders.push(record(json!({"n": "three", "late": true})));
        let arrays = builders.finish();
        let n = arrays[0].as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!((n.value(0), n.is_null(1)), (3, true));
        let extra = arrays[1].as_any().downcast_ref::<StringArray>().unwrap();
        assert!(extra.is_null(0));
        let kept: Value = serde_json::from_str(extra.value(1)).unwrap();
        assert_eq!(kept, json!({"n": "three", "late": true}));
    }
}
