//! Rows ([`Val`] cells) → Arrow record batches, one builder per table.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::record_batch::RecordBatch;
use mcpf_formats::Val;
use mcpf_schema::{Kind, Table};

enum Col {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMicrosecondBuilder),
}

/// Accumulates rows of one table until they are worth a batch.
pub struct TableBuilder {
    table: Table,
    cols: Vec<Col>,
    rows: usize,
}

impl TableBuilder {
    pub fn new(table: Table) -> Self {
        let cols = table
            .columns()
            .iter()
            .map(|c| match c.kind {
                Kind::Utf8 => Col::Utf8(StringBuilder::new()),
                Kind::Int64 => Col::Int64(Int64Builder::new()),
                Kind::Float64 => Col::Float64(Float64Builder::new()),
                Kind::Bool => Col::Bool(BooleanBuilder::new()),
                Kind::Timestamp => Col::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            })
            .collect();
        TableBuilder { table, cols, rows: 0 }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Append one row. The cells must match the table's columns in number and
    /// kind: a mismatch is a bug in a parser, caught by every parser test.
    pub fn append(&mut self, vals: &[Val<'_>]) {
        assert_eq!(vals.len(), self.cols.len(), "row for {} has {} cells, table has {} columns", self.table.name(), vals.len(), self.cols.len());
        for (i, (col, val)) in self.cols.iter_mut().zip(vals).enumerate() {
            match (col, val) {
                (Col::Utf8(b), Val::Str(v)) => b.append_option(*v),
                (Col::Int64(b), Val::Int(v)) => b.append_option(*v),
                (Col::Float64(b), Val::Float(v)) => b.append_option(*v),
                (Col::Bool(b), Val::Bool(v)) => b.append_option(*v),
                (Col::Ts(b), Val::Ts(v)) => b.append_option(*v),
                (_, v) => panic!("{}: column {} ({}) got {v:?}", self.table.name(), i, self.table.columns()[i].name),
            }
        }
        self.rows += 1;
    }

    /// The rows so far as a batch; the builder starts empty again.
    pub fn finish(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Col::Utf8(b) => Arc::new(b.finish()),
                    Col::Int64(b) => Arc::new(b.finish()),
                    Col::Float64(b) => Arc::new(b.finish()),
                    Col::Bool(b) => Arc::new(b.finish()),
                    Col::Ts(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.table.schema(), arrays).expect("builders match the schema")
    }
}
