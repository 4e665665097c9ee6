//! A lake table as a cluster can read it: the Parquet files of one
//! published Delta version, listed once by the client.
//!
//! The executors get standard DataFusion Parquet scans (`DataSourceExec`
//! over explicit files, with each file's `date` partition value), which
//! Ballista's default physical codec already carries; only this provider
//! needs a codec of ours ([`crate::codec`]), on the client and the
//! scheduler. Why not the Delta provider itself: delta-rs's codec for it
//! (`DeltaLogicalCodec`) ships the whole snapshot and its physical codec
//! covers only the legacy scan, so the executors would each re-read the
//! Delta log; the file list is what a version *is*, and fixing it on the
//! client means every executor reads exactly the published files.

use std::sync::Arc;

use arrow::datatypes::{FieldRef, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

/// One data file of the version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataFile {
    /// The object path under the store (bucket-relative for S3, absolute
    /// for a local lake).
    pub path: String,
    pub size: u64,
    /// The values of the partition columns, in [`LakeFiles::partition_columns`] order.
    pub partition_values: Vec<Option<String>>,
}

/// What the codec carries: everything a scan needs but the schema (which
/// the plan carries itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LakeFiles {
    /// `s3://bucket` or `file://`.
    pub store_url: String,
    /// The lake table and its Delta version (for plans and errors).
    pub table: String,
    pub version: u64,
    pub partition_columns: Vec<String>,
    pub files: Vec<DataFile>,
}

/// The provider: a fixed file list, scanned in as many groups as the
/// session has target partitions.
#[derive(Debug)]
pub struct LakeTable {
    pub files: LakeFiles,
    pub schema: SchemaRef,
}

impl LakeTable {
    /// The published files of `table` (a Delta table at its published
    /// version).
    pub async fn from_delta(name: &str, table: &deltalake::DeltaTable) -> Result<LakeTable> {
        let snapshot = table.snapshot().map_err(|e| DataFusionError::External(Box::new(e)))?;
        let partition_columns: Vec<String> = snapshot.metadata().partition_columns().to_vec();
        // The schema local sessions see (the Delta provider's), column order included.
        let schema: SchemaRef = table.table_provider().await.map_err(|e| DataFusionError::External(Box::new(e)))?.schema();
        let root = table.table_url().clone();
        let store_url = match root.scheme() {
            "file" => "file://".to_string(),
            scheme => format!("{scheme}://{}", root.host_str().unwrap_or_default()),
        };
        // Paths relative to the store: the table root's path, then the file's.
        let prefix = root.path().trim_start_matches('/').trim_end_matches('/').to_string();
        let views: Vec<_> = table.get_active_add_actions_by_partitions(&[]).try_collect().await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut files = Vec::with_capacity(views.len());
        for v in views {
            let values = v.partition_values_map();
            let rel = v.object_store_path().to_string();
            files.push(DataFile {
                path: format!("{prefix}/{rel}"),
                size: v.size().max(0) as u64,
                partition_values: partition_columns.iter().map(|c| values.get(c).cloned().flatten()).collect(),
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let version = table.version().unwrap_or(0).max(0) as u64;
        Ok(LakeTable { files: LakeFiles { store_url, table: name.to_string(), version, partition_columns, files }, schema })
    }

    /// The partition columns as the schema has them (Delta's provider
    /// gives them dictionary-encoded).
    fn partition_fields(&self) -> Result<Vec<FieldRef>> {
        self.files.partition_columns.iter().map(|c| Ok(Arc::new(self.schema.field_with_name(c)?.clone()))).collect()
    }
}

#[async_trait::async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(&self, state: &dyn Session, projection: Option<&Vec<usize>>, _filters: &[Expr], limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let parts = self.partition_fields()?;
        let is_part = |name: &str| self.files.partition_columns.iter().any(|c| c == name);
        // The files hold every column but the partition ones; DataFusion
        // appends those after the file's columns.
        let file_fields: Vec<FieldRef> = self.schema.fields().iter().filter(|f| !is_part(f.name())).cloned().collect();
        let file_schema = Arc::new(arrow::datatypes::Schema::new(file_fields.clone()));
        let scan_index = |i: usize| -> usize {
            let name = self.schema.field(i).name();
            match self.files.partition_columns.iter().position(|c| c == name) {
                Some(p) => file_fields.len() + p,
                None => file_fields.iter().position(|f| f.name() == name).expect("a file column"),
            }
        };
        // The requested columns, in the order asked, as scan indices.
        let wanted: Vec<usize> = match projection {
            Some(p) => p.iter().map(|i| scan_index(*i)).collect(),
            None => (0..self.schema.fields().len()).map(scan_index).collect(),
        };
        if self.files.files.is_empty() {
            // No file: one empty partition (a scan of zero file groups has
            // zero partitions, which operators above it do not expect).
            let projected = Arc::new(match projection {
                Some(p) => self.schema.project(p)?,
                None => self.schema.as_ref().clone(),
            });
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        let groups_wanted = state.config().target_partitions().max(1);
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups_wanted.min(self.files.files.len()).max(1)];
        for (i, f) in self.files.files.iter().enumerate() {
            let mut pf = PartitionedFile::new(f.path.clone(), f.size);
            pf.partition_values = f.partition_values.iter().zip(&parts).map(|(v, field)| ScalarValue::Utf8(v.clone()).cast_to(field.data_type())).collect::<Result<_>>()?;
            let n = groups.len();
            groups[i % n].push(pf);
        }
        let source = Arc::new(ParquetSource::new(TableSchema::builder(file_schema).with_table_partition_cols(parts).build()));
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse(&self.files.store_url)?, source)
            .with_file_groups(groups.into_iter().filter(|g| !g.is_empty()).map(FileGroup::new).collect())
            .with_projection_indices(Some(wanted))?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
