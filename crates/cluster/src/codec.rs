//! The logical codec the client and the scheduler share: the lake's tables
//! ([`LakeTable`], as JSON) and in-memory tables (the rules' lists and empty
//! tables, as an Arrow IPC stream) cross the wire; everything else is
//! Ballista's default codec.

use std::io::Cursor;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::common::TableReference;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion_proto::logical_plan::LogicalExtensionCodec;

use crate::table::{LakeFiles, LakeTable};

/// The first byte of an encoded provider.
const LAKE_FILES: u8 = 1;
const MEMORY: u8 = 2;
/// Lists and empty tables are small; a bigger in-memory table is a plan
/// that should not be shipped (and a hostile plan must not allocate more).
const MAX_MEMORY_TABLE_BYTES: usize = 64 << 20;

/// Ours for lake and memory tables, Ballista's for the rest.
#[derive(Debug, Default)]
pub struct LakeCodec {
    inner: BallistaLogicalExtensionCodec,
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl LogicalExtensionCodec for LakeCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(&self, buf: &[u8], table_ref: &TableReference, schema: SchemaRef, ctx: &TaskContext) -> Result<Arc<dyn TableProvider>> {
        match buf.split_first() {
            Some((&LAKE_FILES, rest)) => {
                let files: LakeFiles = serde_json::from_slice(rest).map_err(external)?;
                Ok(Arc::new(LakeTable { files, schema }))
            }
            Some((&MEMORY, rest)) => {
                if rest.len() > MAX_MEMORY_TABLE_BYTES {
                    return Err(DataFusionError::Plan(format!("in-memory table {table_ref} is larger than {MAX_MEMORY_TABLE_BYTES} bytes")));
                }
                let reader = StreamReader::try_new(Cursor::new(rest), None).map_err(external)?;
                let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(external)?;
                Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
            }
            _ => self.inner.try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(&self, table_ref: &TableReference, node: Arc<dyn TableProvider>, buf: &mut Vec<u8>) -> Result<()> {
        if let Some(t) = node.downcast_ref::<LakeTable>() {
            buf.push(LAKE_FILES);
            return serde_json::to_writer(buf, &t.files).map_err(external);
        }
        if let Some(m) = node.downcast_ref::<MemTable>() {
            buf.push(MEMORY);
            let schema = m.schema();
            let mut w = StreamWriter::try_new(&mut *buf, &schema).map_err(external)?;
            for partition in &m.batches {
                let batches = futures::executor::block_on(partition.read());
                for b in batches.iter() {
                    w.write(b).map_err(external)?;
                }
            }
            w.finish().map_err(external)?;
            if buf.len() > MAX_MEMORY_TABLE_BYTES {
                return Err(DataFusionError::Plan(format!("in-memory table {table_ref} is too large to send to the cluster ({} bytes)", buf.len())));
            }
            return Ok(());
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::DataFile;
    use arrow::array::StringArray;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;

    #[test]
    fn lake_and_memory_tables_round_trip() {
        let codec = LakeCodec::default();
        let ctx = TaskContext::default();
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("date", DataType::Utf8, true)]));
        let files = LakeFiles {
            store_url: "s3://bucket".into(),
            table: "mail_deliveries".into(),
            version: 7,
            partition_columns: vec!["date".into()],
            files: vec![DataFile { path: "lake/mail_deliveries/date=2025-09-17/part-1.parquet".into(), size: 123, partition_values: vec![Some("2025-09-17".into())] }],
        };
        let mut buf = Vec::new();
        let t = TableReference::bare("mail_deliveries");
        codec.try_encode_table_provider(&t, Arc::new(LakeTable { files: files.clone(), schema: schema.clone() }), &mut buf).unwrap();
        let back = codec.try_decode_table_provider(&buf, &t, schema.clone(), &ctx).unwrap();
        assert_eq!(back.downcast_ref::<LakeTable>().unwrap().files, files);

        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["x", "y"])), Arc::new(StringArray::from(vec![None, Some("d")]))]).unwrap();
        let mem = MemTable::try_new(schema.clone(), vec![vec![batch.clone()]]).unwrap();
        let mut buf = Vec::new();
        codec.try_encode_table_provider(&t, Arc::new(mem), &mut buf).unwrap();
        let back = codec.try_decode_table_provider(&buf, &t, schema.clone(), &ctx).unwrap();
        let m = back.downcast_ref::<MemTable>().unwrap();
        let rows = futures::executor::block_on(m.batches[0].read());
        assert_eq!(rows[0], batch);

        // A truncated or forged buffer is an error, never a panic.
        assert!(codec.try_decode_table_provider(&[LAKE_FILES, b'{'], &t, schema.clone(), &ctx).is_err());
        assert!(codec.try_decode_table_provider(&[MEMORY, 1, 2, 3], &t, schema, &ctx).is_err());
    }
}
