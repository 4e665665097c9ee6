//! The operations behind `detect`, `timeline`, `sql` and `tables`, shared
//! by the CLI and the Python bindings so both behave alike: same rules,
//! lists and parameters, same `_findings` bookkeeping, same errors.
//!
//! Each takes an optional stop flag: once it is set the running query is
//! dropped and the call returns an error saying nothing was committed
//! (Ctrl-C in Python sets it).

use std::sync::atomic::AtomicBool;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::scalar::ScalarValue;
use mcpf_lake::Lake;
use mcpf_schema::Table;

use crate::config::RuleSetup;
use crate::{err, store, timeline, DetectOptions, Engine, Finding, Result};

/// What a detection run should do besides running the rules.
#[derive(Debug, Clone, Default)]
pub struct DetectRequest {
    pub options: DetectOptions,
    /// Record new or changed findings in `_findings`.
    pub record: bool,
    /// Keep only findings no earlier recorded run reported (implies `record`).
    pub new_only: bool,
}

/// The outcome of a detection run.
#[derive(Debug, Clone)]
pub struct DetectOutcome {
    /// The findings (only the new ones with `new_only`).
    pub findings: Vec<Finding>,
    /// Rows this run wrote to `_findings`.
    pub recorded: usize,
    /// Findings known to `_findings` before this run.
    pub known_before: usize,
}

fn block_on<T>(lake: &Lake, f: impl std::future::Future<Output = Result<T>>, stop: Option<&AtomicBool>) -> Result<T> {
    lake.block_on_stoppable(f, stop).map_err(err)?
}

/// Run the rules of `setup` over the lake. With `record`/`new_only`, what
/// earlier runs recorded is read and this run's findings appended under the
/// writers' lock, so two scheduled runs at once never both report a finding
/// as new.
pub fn detect(lake: &Lake, setup: &RuleSetup, req: &DetectRequest, stop: Option<&AtomicBool>) -> Result<DetectOutcome> {
    let all = block_on(
        lake,
        async {
            let engine = Engine::open(lake).await?;
            engine.register_lists(&setup.rules, &setup.lists)?;
            engine.detect(&setup.rules, &req.options).await
        },
        stop,
    )?;
    if !(req.new_only || req.record) {
        return Ok(DetectOutcome { findings: all, recorded: 0, known_before: 0 });
    }
    mcpf_lake::failpoint("detect-before-record");
    let run = store::run_id(&all);
    let (recorded, before) = lake
        .write("detect", &run, stop, |txn| {
            let before = lake.block_on(async { store::recorded(&Engine::open(lake).await?).await }).map_err(|e| store::lake_error(lake, e))?;
            let n = store::record(lake, txn, &all, &before)?;
            Ok((n, before))
        })
        .map_err(err)?;
    let known_before = before.len();
    let findings = if req.new_only { store::only_new(all, &before) } else { all };
    Ok(DetectOutcome { findings, recorded, known_before })
}

/// Everything the lake knows about one entity, in time order, with the
/// findings of a run of `setup`'s rules merged in (none when `with_findings`
/// is false).
pub fn timeline(lake: &Lake, setup: &RuleSetup, entity: &str, with_findings: bool, stop: Option<&AtomicBool>) -> Result<RecordBatch> {
    block_on(
        lake,
        async {
            let engine = Engine::open(lake).await?;
            engine.register_lists(&setup.rules, &setup.lists)?;
            let opts = DetectOptions { params: setup.params.clone(), ..Default::default() };
            let findings = if with_findings { engine.detect(&setup.rules, &opts).await? } else { vec![] };
            timeline::timeline(&engine, entity, &findings).await
        },
        stop,
    )
}

/// The delivery rows of one entity's timeline, whole, in time order (for
/// OCSF Email Activity output).
pub fn timeline_deliveries(lake: &Lake, entity: &str, stop: Option<&AtomicBool>) -> Result<Vec<RecordBatch>> {
    block_on(
        lake,
        async {
            let engine = Engine::open(lake).await?;
            timeline::timeline_deliveries(&engine, entity).await
        },
        stop,
    )
}

/// Run SQL over the lake (and the lists of `setup`, as `list_NAME`) with
/// named parameters bound as `$name`, never pasted into the text.
pub fn sql(lake: &Lake, setup: &RuleSetup, query: &str, params: Vec<(String, ScalarValue)>, stop: Option<&AtomicBool>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    block_on(
        lake,
        async {
            let engine = Engine::open(lake).await?;
            engine.register_lists(&setup.rules, &setup.lists)?;
            engine.query(query, params).await
        },
        stop,
    )
}

/// [`sql`], handing each result batch to `each` as it is computed (memory
/// bounded by a batch for queries without shared CTEs); `each` returns
/// false to stop early. Returns the result's schema.
pub fn sql_each(lake: &Lake, setup: &RuleSetup, query: &str, params: Vec<(String, ScalarValue)>, stop: Option<&AtomicBool>, each: &mut dyn FnMut(&RecordBatch) -> Result<bool>) -> Result<SchemaRef> {
    use futures::StreamExt;
    block_on(
        lake,
        async {
            let engine = Engine::open(lake).await?;
            engine.register_lists(&setup.rules, &setup.lists)?;
            let (schema, mut stream) = crate::materialize::stream(engine.context(), query, &params).await?;
            while let Some(b) = stream.next().await {
                let b = b.map_err(|e| err(format!("query failed: {e}")))?;
                if !each(&b)? {
                    break;
                }
            }
            Ok(schema)
        },
        stop,
    )
}

/// Row count of every table (0 for tables not created yet).
pub fn table_counts(lake: &Lake, stop: Option<&AtomicBool>) -> Result<Vec<(Table, i64)>> {
    block_on(
        lake,
        async {
            let engine = Engine::open(lake).await?;
            let mut counts = Vec::new();
            for t in Table::ALL {
                let b = engine.sql(&format!("SELECT count(*) FROM {}", t.name()), vec![]).await?;
                let n = b.first().and_then(|b| b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().map(|a| a.value(0))).unwrap_or(0);
                counts.push((t, n));
            }
            Ok(counts)
        },
        stop,
    )
}
