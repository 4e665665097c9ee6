//! `verify`: re-fingerprint every ingested raw log and say whether the bytes
//! behind the lake's evidence are still there, unchanged.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fingerprint::fingerprint_path;
use crate::{Lake, Result};

/// What `verify` found for one recorded source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// Same bytes as at the last ingest.
    Unchanged,
    /// Bytes were appended; everything ingested is intact.
    Grown { size: u64 },
    /// The ingested bytes changed (same length or longer, different content).
    Modified,
    /// The file is shorter than what was ingested.
    Truncated { size: u64 },
    /// The file is gone (or unreadable).
    Missing { error: String },
}

impl SourceState {
    /// Whether the ingested bytes are still there, unchanged.
    pub fn intact(&self) -> bool {
        matches!(self, SourceState::Unchanged | SourceState::Grown { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            SourceState::Unchanged => "unchanged",
            SourceState::Grown { .. } => "grown",
            SourceState::Modified => "modified",
            SourceState::Truncated { .. } => "truncated",
            SourceState::Missing { .. } => "missing",
        }
    }

    /// What the state means for the evidence, in a sentence (empty when unchanged).
    pub fn note(&self) -> String {
        match self {
            SourceState::Unchanged => String::new(),
            SourceState::Grown { size } => format!("appended to since ingest (now {size} bytes); the ingested part is intact; ingest again to add the rest"),
            SourceState::Modified => "the ingested bytes CHANGED since ingest: findings that point into this file may no longer match it".into(),
            SourceState::Truncated { size } => format!("TRUNCATED to {size} bytes since ingest: evidence past that point is gone from the raw log"),
            SourceState::Missing { error } => format!("MISSING ({error}); give the base folder (--base DIR) if it was ingested with a relative path from elsewhere"),
        }
    }
}

/// `verify`'s checks as one Arrow batch: state, intact, source_file,
/// checked_path, recorded_size, recorded_sha256, ingested_at, note.
pub fn checks_batch(checks: &[SourceCheck]) -> arrow::record_batch::RecordBatch {
    use arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let schema = Arc::new(Schema::new(vec![
        Field::new("state", DataType::Utf8, false),
        Field::new("intact", DataType::Boolean, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("checked_path", DataType::Utf8, false),
        Field::new("recorded_size", DataType::Int64, false),
        Field::new("recorded_sha256", DataType::Utf8, false),
        Field::new("ingested_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("note", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(checks.iter().map(|c| c.state.name()).collect::<Vec<_>>())),
        Arc::new(BooleanArray::from(checks.iter().map(|c| c.state.intact()).collect::<Vec<_>>())),
        Arc::new(StringArray::from(checks.iter().map(|c| c.source_file.clone()).collect::<Vec<_>>())),
        Arc::new(StringArray::from(checks.iter().map(|c| c.checked_path.display().to_string()).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(checks.iter().map(|c| c.recorded_size as i64).collect::<Vec<_>>())),
        Arc::new(StringArray::from(checks.iter().map(|c| c.recorded_sha256.clone()).collect::<Vec<_>>())),
        Arc::new(TimestampMicrosecondArray::from(checks.iter().map(|c| c.ingested_at_us).collect::<Vec<_>>()).with_timezone("UTC")),
        Arc::new(StringArray::from(checks.iter().map(|c| c.state.note()).collect::<Vec<_>>())),
    ];
    arrow::record_batch::RecordBatch::try_new(schema, cols).expect("columns match the schema")
}

/// One recorded source, re-fingerprinted.
#[derive(Debug, Clone)]
pub struct SourceCheck {
    /// The path as recorded at ingest.
    pub source_file: String,
    /// Where it was looked for (the recorded path, or resolved under a base folder).
    pub checked_path: PathBuf,
    pub recorded_sha256: String,
    pub recorded_size: u64,
    /// When it was last ingested (UTC micros).
    pub ingested_at_us: i64,
    pub state: SourceState,
}

impl Lake {
    /// Re-fingerprint every source `_ingest_log` records (its latest, longest
    /// ingest) and say whether the raw bytes behind the lake are still there
    /// unchanged. The raw logs are evidence: an attacker who can edit them can
    /// make findings point at lines that no longer say what they said.
    /// Relative paths are looked up under `base` when given.
    pub fn verify(&self, base: Option<&Path>) -> Result<Vec<SourceCheck>> {
        let batches = self.rt.block_on(self.query_ingest_log(
            "SELECT source_file, source_sha256, source_size, CAST(ts AS BIGINT) AS ts_us FROM l WHERE status <> 'failed' ORDER BY source_file, source_size, ts",
        ))?;
        let mut latest: BTreeMap<String, (String, u64, i64)> = BTreeMap::new();
        for b in &batches {
            let cast = |i: usize, t: &arrow::datatypes::DataType| arrow::compute::cast(b.column(i), t).map_err(|e| self.lake_err(e));
            let file = cast(0, &arrow::datatypes::DataType::Utf8)?;
            let sha = cast(1, &arrow::datatypes::DataType::Utf8)?;
            let size = cast(2, &arrow::datatypes::DataType::Int64)?;
            let ts = cast(3, &arrow::datatypes::DataType::Int64)?;
            let file = file.as_any().downcast_ref::<arrow::array::StringArray>().expect("utf8");
            let sha = sha.as_any().downcast_ref::<arrow::array::StringArray>().expect("utf8");
            let size = size.as_any().downcast_ref::<arrow::array::Int64Array>().expect("i64");
            let ts = ts.as_any().downcast_ref::<arrow::array::Int64Array>().expect("i64");
            for i in 0..b.num_rows() {
                // Ordered by size then time: the last record of a file is its longest, latest ingest.
                latest.insert(file.value(i).to_string(), (sha.value(i).to_string(), size.value(i).max(0) as u64, ts.value(i)));
            }
        }
        let mut out = Vec::new();
        for (source_file, (recorded_sha256, recorded_size, ingested_at_us)) in latest {
            let recorded = mcpf_formats::text::path_from_text(&source_file);
            let checked_path = match base {
                Some(b) if recorded.is_relative() => b.join(&recorded),
                _ => recorded,
            };
            let state = match fs::metadata(&checked_path) {
                Err(e) => SourceState::Missing { error: e.to_string() },
                Ok(m) if m.len() < recorded_size => SourceState::Truncated { size: m.len() },
                Ok(m) => match fingerprint_path(&checked_path, Some(recorded_size)) {
                    Err(e) => SourceState::Missing { error: e.to_string() },
                    Ok((whole, prefix, _)) => {
                        if m.len() == recorded_size {
                            if whole == recorded_sha256 { SourceState::Unchanged } else { SourceState::Modified }
                        } else if prefix.as_deref() == Some(recorded_sha256.as_str()) {
                            SourceState::Grown { size: m.len() }
                        } else {
                            SourceState::Modified
                        }
                    }
                },
            };
            out.push(SourceCheck { source_file, checked_path, recorded_sha256, recorded_size, ingested_at_us, state });
        }
        Ok(out)
    }
}
