//! The Delta store: one Delta table per lake table under the lake root.
//!
//! Everything here is storage (open a table at a version, create it, commit
//! a set of files, roll a table back to a published version, remove files a
//! dead run left); what to write and when is decided by the ingest pipeline
//! and the writer transaction in `lib.rs`.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::PathBuf;

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, DataType as DeltaType, StructField};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::DeltaTable;
use mcpf_schema::{Kind, Table};

use crate::location::Location;

/// The commit-info key that carries the id of the run that wrote a commit.
pub const RUN_ID_KEY: &str = "mcp_forensics_ingest_id";

/// Delta access to the tables of one lake root.
#[derive(Debug, Clone)]
pub struct Store {
    loc: Location,
}

/// A storage failure, as text that names the table.
pub type StoreResult<T> = std::result::Result<T, String>;

/// The Delta type a lake column kind is stored as.
pub fn delta_type(k: Kind) -> DeltaType {
    match k {
        Kind::Utf8 => DeltaType::STRING,
        Kind::Int64 => DeltaType::LONG,
        Kind::Float64 => DeltaType::DOUBLE,
        Kind::Bool => DeltaType::BOOLEAN,
        Kind::Timestamp => DeltaType::TIMESTAMP,
    }
}

/// Commit properties that tag a commit with its run.
pub fn run_properties(run_id: &str) -> CommitProperties {
    CommitProperties::default().with_metadata([(RUN_ID_KEY.to_string(), serde_json::json!(run_id))])
}

impl Store {
    pub fn new(loc: &Location) -> Store {
        Store { loc: loc.clone() }
    }

    /// Directory of a table (for a remote lake: its URL, as a path).
    pub fn table_path(&self, t: Table) -> PathBuf {
        self.loc.display().join(t.name())
    }

    fn first_commit_key(t: Table) -> String {
        format!("{}/_delta_log/{:020}.json", t.name(), 0)
    }

    /// Whether the table has a Delta log with at least its first commit.
    pub fn exists(&self, t: Table) -> bool {
        match &self.loc {
            Location::Local(root) => root.join(t.name()).join("_delta_log").join(format!("{:020}.json", 0)).is_file(),
            Location::Remote(r) => r.exists(&Self::first_commit_key(t)).unwrap_or(false),
        }
    }

    /// The table's URL (a local one made absolute, and created if asked).
    pub fn url(&self, t: Table, create: bool) -> StoreResult<url::Url> {
        let root = match &self.loc {
            Location::Remote(r) => return Ok(r.url_of(&format!("{}/", t.name()))),
            Location::Local(root) => root,
        };
        let p = root.join(t.name());
        if create {
            fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        }
        let abs = p.canonicalize().map_err(|e| format!("{}: {e}", p.display()))?;
        url::Url::from_directory_path(&abs).map_err(|_| format!("not a local path: {}", abs.display()))
    }

    /// The table at `version`, or at its latest version when None; None when
    /// the table does not exist.
    pub async fn load(&self, t: Table, version: Option<u64>) -> StoreResult<Option<DeltaTable>> {
        if !self.exists(t) {
            return Ok(None);
        }
        let url = self.url(t, false)?;
        let table = match version {
            Some(v) => deltalake::open_table_with_version(url, v).await,
            None => deltalake::open_table(url).await,
        };
        table.map(Some).map_err(|e| format!("table {}: {e}", t.name()))
    }

    /// The table at its latest version, created (empty, version 0) if missing.
    /// Only a holder of the writers' lock calls it.
    pub async fn ensure(&self, t: Table) -> StoreResult<DeltaTable> {
        if let Some(table) = self.load(t, None).await? {
            return Ok(table);
        }
        // A creator that died before its first commit may have left an
        // empty `_delta_log`; nothing in it is data. (In an object store the
        // first commit is one conditional write: there is nothing to clear.)
        if let Location::Local(root) = &self.loc {
            let log = root.join(t.name()).join("_delta_log");
            if log.is_dir() {
                fs::remove_dir_all(&log).map_err(|e| format!("cannot clear the unfinished {}: {e}", log.display()))?;
            }
        }
        let url = self.url(t, true)?;
        let table = DeltaTable::try_from_url(url).await.map_err(|e| e.to_string())?;
        let fields: Vec<StructField> = t.columns().iter().map(|c| StructField::new(c.name, delta_type(c.kind), c.nullable)).collect();
        table
            .create()
            .with_table_name(t.name())
            .with_comment(t.doc())
            .with_columns(fields)
            .with_partition_columns(t.partition_columns().iter().copied())
            .await
            .map_err(|e| format!("cannot create table {}: {e}", t.name()))
    }

    /// Columns of this release that `t` lacks; an error when one of them is
    /// required (NOT NULL), which no in-place upgrade can give old rows.
    fn missing_columns(t: Table, table: &DeltaTable) -> StoreResult<Vec<mcpf_schema::Column>> {
        let schema = table.snapshot().map_err(|e| e.to_string())?.schema();
        let have: HashSet<String> = schema.fields().map(|f| f.name().to_string()).collect();
        let missing: Vec<_> = t.columns().into_iter().filter(|c| !have.contains(c.name)).collect();
        if let Some(c) = missing.iter().find(|c| !c.nullable) {
            return Err(format!(
                "table {} was written by an older mcp-forensics without the required column {}; ingest the sources into a new lake (the old one stays readable with the release that wrote it)",
                t.name(),
                c.name
            ));
        }
        Ok(missing)
    }

    /// Whether this release can write `t` (a missing table is fine: it is
    /// created); Ok(true) when it lacks nullable columns that
    /// [`Store::add_missing_columns`] will add. Read-only; run before
    /// anything queries the tables.
    pub async fn check_columns(&self, t: Table) -> StoreResult<bool> {
        match self.load(t, None).await? {
            Some(table) => Self::missing_columns(t, &table).map(|m| !m.is_empty()),
            None => Ok(false),
        }
    }

    /// Bring a table written by an earlier release up to this release's
    /// columns: the columns added since are nullable and are added to the
    /// Delta schema by one metadata commit (older files read them as NULL:
    /// "not recorded by that release"). Returns the new version when a
    /// commit was made.
    pub async fn add_missing_columns(&self, t: Table, run_id: &str) -> StoreResult<Option<u64>> {
        let Some(table) = self.load(t, None).await? else { return Ok(None) };
        let missing = Self::missing_columns(t, &table)?;
        if missing.is_empty() {
            return Ok(None);
        }
        let fields: Vec<StructField> = missing.iter().map(|c| StructField::new(c.name, delta_type(c.kind), true)).collect();
        let table = table
            .add_columns()
            .with_fields(fields)
            .with_commit_properties(run_properties(run_id))
            .await
            .map_err(|e| format!("adding the columns of this release to {}: {e}", t.name()))?;
        Ok(table.version())
    }

    /// Commit `actions` (the Add actions of files already written) to `table`
    /// as one append; returns the new version.
    pub async fn commit_append(&self, t: Table, table: &DeltaTable, actions: Vec<Action>, run_id: &str) -> StoreResult<u64> {
        let snapshot = table.snapshot().map_err(|e| e.to_string())?;
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(t.partition_columns().iter().map(|c| c.to_string()).collect()),
            predicate: None,
        };
        let done = CommitBuilder::from(run_properties(run_id))
            .with_actions(actions)
            .build(Some(snapshot), table.log_store(), operation)
            .await
            .map_err(|e| format!("committing {}: {e}", t.name()))?;
        Ok(done.version())
    }

    /// Delete the rows matching `predicate` (a DataFusion expression, never
    /// SQL text) in one DELETE commit tagged with the run; returns the new
    /// version (the old one when nothing matched: no commit is made).
    pub async fn delete_where(&self, t: Table, predicate: deltalake::datafusion::prelude::Expr, run_id: &str) -> StoreResult<u64> {
        let table = self.load(t, None).await?.ok_or_else(|| format!("table {} vanished", t.name()))?;
        let before = table.version().unwrap_or(0);
        let (table, _) = table
            .delete()
            .with_predicate(predicate)
            .with_commit_properties(run_properties(run_id))
            .await
            .map_err(|e| format!("deleting from {}: {e}", t.name()))?;
        Ok(table.version().unwrap_or(before))
    }

    /// Latest version of every existing table.
    pub async fn latest_versions(&self) -> StoreResult<BTreeMap<Table, u64>> {
        let mut out = BTreeMap::new();
        for t in Table::ALL {
            if let Some(table) = self.load(t, None).await? {
                out.insert(t, table.version().unwrap_or(0));
            }
        }
        Ok(out)
    }

    /// Roll `t` back to `version` with a RESTORE commit (files added after it
    /// removed from the table state); returns the new version.
    pub async fn restore(&self, t: Table, version: u64, run_id: &str) -> StoreResult<u64> {
        let table = self.load(t, None).await?.ok_or_else(|| format!("table {} vanished", t.name()))?;
        let (table, _) = table
            .restore()
            .with_version_to_restore(version)
            .with_ignore_missing_files(true)
            .with_commit_properties(run_properties(run_id))
            .await
            .map_err(|e| format!("restoring {} to version {version}: {e}", t.name()))?;
        Ok(table.version().unwrap_or(version))
    }

    /// Paths (relative to the table root) of the files every commit up to and
    /// including `upto` added.
    async fn added_files(&self, table: &DeltaTable, upto: u64) -> StoreResult<HashSet<String>> {
        let store = table.log_store();
        let mut out = HashSet::new();
        for v in 0..=upto {
            let Some(bytes) = store.read_commit_entry(v).await.map_err(|e| e.to_string())? else { continue };
            for line in bytes.split(|b| *b == b'\n') {
                let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
                if let Some(p) = action.pointer("/add/path").and_then(|p| p.as_str()) {
                    out.insert(percent_decode(p));
                }
            }
        }
        Ok(out)
    }

    /// Delete the data files under a table's folder that no commit up to
    /// `published` added: files a dead (or stopped) run wrote, committed
    /// after the published version or never committed at all. Readers of
    /// any published snapshot never reference them. Returns how many.
    /// Only a holder of the writers' lock calls it.
    pub async fn remove_unpublished_files(&self, t: Table, published: u64) -> StoreResult<usize> {
        let Some(table) = self.load(t, None).await? else { return Ok(0) };
        let keep = self.added_files(&table, published).await?;
        let mut removed = 0;
        for rel in self.data_files(t)? {
            if !keep.contains(&rel) {
                self.remove_data_file(t, &rel)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every Parquet file under a table's folder (outside `_delta_log`),
    /// relative to the table root.
    fn data_files(&self, t: Table) -> StoreResult<Vec<String>> {
        let is_data = |rel: &str| rel.ends_with(".parquet") && !rel.starts_with("_delta_log/");
        match &self.loc {
            Location::Remote(r) => {
                let prefix = format!("{}/", t.name());
                let keys = r.list(t.name()).map_err(|e| format!("listing {}: {e}", t.name()))?;
                Ok(keys.into_iter().filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_string)).filter(|rel| is_data(rel)).collect())
            }
            Location::Local(root) => {
                let root = root.join(t.name());
                let mut out = Vec::new();
                let mut stack = vec![root.clone()];
                while let Some(dir) = stack.pop() {
                    let Ok(entries) = fs::read_dir(&dir) else { continue };
                    for e in entries.flatten() {
                        let p = e.path();
                        let Ok(kind) = e.file_type() else { continue };
                        if kind.is_dir() {
                            stack.push(p);
                            continue;
                        }
                        let rel = p.strip_prefix(&root).map(|r| r.to_string_lossy().replace('\\', "/")).unwrap_or_default();
                        if is_data(&rel) {
                            out.push(rel);
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    fn remove_data_file(&self, t: Table, rel: &str) -> StoreResult<()> {
        match &self.loc {
            Location::Remote(r) => r.delete(&format!("{}/{rel}", t.name())).map_err(|e| format!("cannot remove {}/{rel}: {e}", t.name())),
            Location::Local(root) => {
                let p = root.join(t.name()).join(rel);
                fs::remove_file(&p).map_err(|e| format!("cannot remove {}: {e}", p.display()))
            }
        }
    }
}

/// Delta `add.path` values are URL-encoded (partition values: `date=2026-03-01`
/// stays, a space or `%` in a value does not).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_decoding_of_add_paths() {
        assert_eq!(super::percent_decode("date=2026-03-01/part-0.parquet"), "date=2026-03-01/part-0.parquet");
        assert_eq!(super::percent_decode("date=a%20b/x%25.parquet"), "date=a b/x%.parquet");
        assert_eq!(super::percent_decode("bad%2"), "bad%2");
        assert_eq!(super::percent_decode("%zz"), "%zz");
    }
}
