//! Parquet part files: written under a hidden temporary name, fsynced, then renamed into place,
//! so a part file that has its final name is always complete. A crash at any moment leaves at
//! most a temporary file, which the next run deletes.
//!
//! Layout of one part: `id` (string), the metadata columns, `metadata_extra` (JSON text of
//! fields that fit no column), `embedding` (fixed-size list of float32), snappy-compressed.
//! Each part's key-value metadata records its token and truncation counts, so a resumed run can
//! sum them without the manifest.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use super::error::Error;
use super::schema::{self, MetaColumn};
use super::shard::Shard;

/// One finished part file, as listed in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PartInfo {
    /// File name inside the output directory.
    pub file: String,
    /// Rows (embedded records) in it.
    pub rows: u64,
    /// Tokens the model saw for them.
    pub tokens: u64,
    /// How many of them were cut at the model's max length.
    pub truncated: u64,
}

const TOKENS_KEY: &str = "rembed.tokens";
const TRUNCATED_KEY: &str = "rembed.truncated";
/// Marks a part whose every vector was checked finite before it was written; older versions
/// of the job wrote NaN rows, so resume checks the vectors of parts without it.
const FINITE_KEY: &str = "rembed.finite";

/// Which vectors [`read_ids`] checks for NaN and infinities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckVectors {
    /// Every part's (`verify`).
    All,
    /// Only those of parts written before the job checked them (resume).
    Unmarked,
}

/// `part-000012.parquet`, or `part-s0003of0008-000012.parquet` for a shard.
pub(crate) fn part_name(shard: Shard, seq: u64) -> String {
    format!("part{}-{seq:06}.parquet", shard.tag())
}

/// The shard and sequence number of a part file name.
pub(crate) fn parse_part_name(name: &str) -> Option<(Shard, u64)> {
    let rest = name.strip_prefix("part")?.strip_suffix(".parquet")?;
    let (tag, seq) = rest.rsplit_once('-')?;
    Some((Shard::from_tag(tag)?, seq.parse().ok()?))
}

/// The output schema for these metadata columns and dimension.
pub(crate) fn output_schema(columns: &[MetaColumn], dim: usize) -> SchemaRef {
    let mut fields = vec![Field::new(schema::ID, DataType::Utf8, false)];
    fields.extend(schema::fields(columns));
    fields.push(Field::new(
        schema::EMBEDDING,
        DataType::FixedSizeList(item_field(), dim as i32),
        false,
    ));
    Arc::new(Schema::new(fields))
}

fn item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, false))
}

/// A part file being written.
pub(crate) struct PartWriter {
    final_path: PathBuf,
    tmp_path: PathBuf,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    dim: i32,
    info: PartInfo,
}

impl PartWriter {
    /// Starts part `seq` of `shard` in `dir`; `rows` is how many rows it will hold at most.
    pub(crate) fn create(
        dir: &Path,
        shard: Shard,
        seq: u64,
        schema: SchemaRef,
        rows: usize,
    ) -> Result<Self, Error> {
        let name = part_name(shard, seq);
        let final_path = dir.join(&name);
        let tmp_path = dir.join(format!(".{name}.tmp"));
        let dim = match schema.fields().last().map(|f| f.data_type()) {
            Some(DataType::FixedSizeList(_, dim)) => *dim,
            _ => {
                return Err(Error::Malformed {
                    path: tmp_path,
                    reason: "schema does not end with the embedding list".into(),
                })
            }
        };
        let file = File::create(&tmp_path).map_err(Error::io("create", &tmp_path))?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(row_group_rows(dim, rows)))
            .set_created_by(format!("rembed {}", env!("CARGO_PKG_VERSION")));
        // Dictionaries and min/max statistics of float vectors only cost time and space.
        let descriptor = ArrowSchemaConverter::new()
            .convert(&schema)
            .map_err(Error::parquet(&tmp_path))?;
        for column in descriptor.columns() {
            if column.path().parts()[0] == schema::EMBEDDING {
                props = props
                    .set_column_dictionary_enabled(column.path().clone(), false)
                    .set_column_statistics_enabled(column.path().clone(), EnabledStatistics::None);
            }
        }
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props.build()))
            .map_err(Error::parquet(&tmp_path))?;
        Ok(Self {
            final_path,
            tmp_path,
            writer,
            schema,
            dim,
            info: PartInfo {
                file: name,
                ..PartInfo::default()
            },
        })
    }

    /// Rows written so far.
    pub(crate) fn rows(&self) -> u64 {
        self.info.rows
    }

    /// Appends rows: ids, metadata arrays (from `MetaBuilders::finish`) and row-major vectors.
    pub(crate) fn write(
        &mut self,
        ids: StringArray,
        metadata: Vec<ArrayRef>,
        vectors: Vec<f32>,
        tokens: u64,
        truncated: u64,
    ) -> Result<(), Error> {
        let rows = ids.len();
        let dim = self.dim;
        let values = Arc::new(Float32Array::from(vectors));
        let embedding =
            FixedSizeListArray::try_new(item_field(), dim, values, None).map_err(|source| {
                Error::Arrow {
                    path: self.tmp_path.clone(),
                    source,
                }
            })?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(metadata.len() + 2);
        columns.push(Arc::new(ids));
        columns.extend(metadata);
        columns.push(Arc::new(embedding));
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(|source| Error::Arrow {
                path: self.tmp_path.clone(),
                source,
            })?;
        self.writer
            .write(&batch)
            .map_err(Error::parquet(&self.tmp_path))?;
        self.info.rows += rows as u64;
        self.info.tokens += tokens;
        self.info.truncated += truncated;
        Ok(())
    }

    /// Finishes the file and makes it durable under its final name: footer, fsync, rename,
    /// fsync of the directory (without which the rename itself can be lost in a power cut).
    pub(crate) fn commit(mut self) -> Result<PartInfo, Error> {
        for (key, value) in [
            (TOKENS_KEY, self.info.tokens),
            (TRUNCATED_KEY, self.info.truncated),
            (FINITE_KEY, 1),
        ] {
            self.writer
                .append_key_value_metadata(KeyValue::new(key.into(), value.to_string()));
        }
        let file = self
            .writer
            .into_inner()
            .map_err(Error::parquet(&self.tmp_path))?;
        file.sync_all()
            .map_err(Error::io("write", &self.tmp_path))?;
        drop(file);
        std::fs::rename(&self.tmp_path, &self.final_path)
            .map_err(Error::io("rename into", &self.final_path))?;
        if let Some(dir) = self.final_path.parent() {
            sync_dir(dir)?;
        }
        Ok(self.info)
    }
}

/// Rows per row group: the writer holds one row group in memory until it is full, so the vectors
/// of a group are kept near 64 MiB (4096 rows at 4096 dimensions), never more than a part holds.
fn row_group_rows(dim: i32, part_rows: usize) -> usize {
    let bytes_per_row = dim.max(1) as usize * 4;
    ((64 << 20) / bytes_per_row)
        .clamp(1024, 1 << 20)
        .min(part_rows.max(1))
}

/// Makes renames and creations inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync", dir))
}

/// A finished part read back: its ids, its recorded counts and, when asked for, which rows
/// hold a non-finite vector (which the job never writes, but an older version did).
pub(crate) struct PartRows {
    pub ids: Vec<String>,
    pub info: PartInfo,
    /// Row indexes whose vector has a NaN or an infinity.
    pub non_finite: Vec<usize>,
}

/// Reads a finished part's ids and its recorded counts, and its vectors as `check` says
/// (resume needs only the ids of the parts this version wrote, `verify` checks every value).
pub(crate) fn read_ids(path: &Path, check: CheckVectors) -> Result<PartRows, Error> {
    let file = File::open(path).map_err(Error::io("open", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(Error::parquet(path))?;
    let count = |key: &str| -> u64 {
        builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|kv| kv.key == key))
            .and_then(|kv| kv.value.as_deref())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut info = PartInfo {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        tokens: count(TOKENS_KEY),
        truncated: count(TRUNCATED_KEY),
        ..PartInfo::default()
    };
    let check_vectors = check == CheckVectors::All || count(FINITE_KEY) != 1;
    // `id` is the first column and `embedding` the last (see `output_schema`).
    let last = builder.schema().fields().len().saturating_sub(1);
    let roots = if check_vectors {
        vec![0, last]
    } else {
        vec![0]
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(Error::parquet(path))?;
    let malformed = |reason: &str| Error::Malformed {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    let (mut ids, mut non_finite) = (Vec::new(), Vec::new());
    for batch in reader {
        let batch = batch.map_err(|source| Error::Arrow {
            path: path.to_path_buf(),
            source,
        })?;
        let column = batch.column(0).as_any().downcast_ref::<StringArray>();
        let Some(column) = column.filter(|_| batch.schema().field(0).name() == schema::ID) else {
            return Err(malformed("first column is not a string `id`"));
        };
        if check_vectors {
            let vectors = batch
                .column(batch.num_columns() - 1)
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .ok_or_else(|| malformed("last column is not the `embedding` list"))?;
            let values = vectors
                .values()
                .as_any()
                .downcast_ref::<Float32Array>()
                .ok_or_else(|| malformed("`embedding` is not a list of float32"))?;
            let dim = vectors.value_length().max(0) as usize;
            for row in 0..vectors.len() {
                let from = vectors.value_offset_at(row);
                let vector = values.values().get(from..from + dim).unwrap_or_default();
                if !vector.iter().all(|x| x.is_finite()) {
                    non_finite.push(ids.len() + row);
                }
            }
        }
        ids.extend(column.iter().map(|id| id.unwrap_or_default().to_string()));
    }
    info.rows = ids.len() as u64;
    Ok(PartRows {
        ids,
        info,
        non_finite,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_round_trip() {
        let shard = Shard::new(3, 8).unwrap();
        assert_eq!(part_name(shard, 12), "part-s0003of0008-000012.parquet");
        assert_eq!(
            parse_part_name("part-s0003of0008-000012.parquet"),
            Some((shard, 12))
        );
        assert_eq!(
            parse_part_name("part-000007.parquet"),
            Some((Shard::ALL, 7))
        );
        assert_eq!(parse_part_name(".part-000007.parquet.tmp"), None);
        assert_eq!(parse_part_name("_manifest.json"), None);
    }
}
