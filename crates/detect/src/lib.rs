//! Detections: DataFusion SQL rules over the lake → findings.
//!
//! [`Engine`] registers every lake table (an empty one where a table does not
//! exist yet, so a rule over MCP traces still runs on a lake of mail logs
//! only), runs rules with bound parameters, and groups their evidence rows
//! into [`Finding`]s with a stable id, so scheduled runs can de-duplicate.

pub mod batches;
pub mod config;
pub mod explain;
pub mod fixtures;
pub mod lists;
pub mod materialize;
pub mod ocsf;
pub mod ocsf_email;
pub mod ops;
pub mod output;
pub mod rule;
pub mod sql_error;
pub mod store;
pub mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use mcpf_lake::Lake;
use mcpf_schema::Table;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use config::DetectConfig;
pub use lists::Lists;
pub use rule::{embedded_rules, load_rules, Rule, Severity, EVIDENCE_COLUMNS};

/// Evidence rows kept per finding (the count is always exact).
pub const MAX_EVIDENCE_PER_FINDING: usize = 10_000;

/// One raw-log location behind a finding.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Evidence {
    pub source_file: String,
    pub source_line: i64,
    pub source_offset: i64,
    /// JSON pointer inside a multi-record JSON document, where the rule returns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_pointer: Option<String>,
    pub table: String,
    pub ts: String,
    pub detail: Option<String>,
}

/// A finding: what a rule saw, keyed stably, with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// sha256(rule id, key), first 32 hex digits: the same finding gets the
    /// same id in every run.
    pub finding_id: String,
    pub rule_id: String,
    pub severity: Severity,
    pub title: String,
    pub key: String,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(skip)]
    pub first_seen_us: i64,
    #[serde(skip)]
    pub last_seen_us: i64,
    /// Distinct counted units (messages, sessions).
    pub count: u64,
    pub address: Option<String>,
    pub sender: Option<String>,
    pub server: Option<String>,
    pub version: Option<String>,
    pub session: Option<String>,
    pub detail: Option<String>,
    pub evidence_total: u64,
    pub evidence: Vec<Evidence>,
    /// The rule's file: `embedded:NAME` or a path.
    pub rule_origin: String,
    /// The rule's references (ATT&CK, ATLAS, OWASP ids).
    pub references: Vec<String>,
    /// The rule's description (for OCSF `finding_info.desc`).
    #[serde(skip)]
    pub rule_description: String,
}

/// Errors with what to do next.
#[derive(Debug)]
pub struct DetectError(pub String);

impl std::fmt::Display for DetectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DetectError {}

pub type Result<T> = std::result::Result<T, DetectError>;

fn err(e: impl std::fmt::Display) -> DetectError {
    DetectError(e.to_string())
}

/// Which rules and how.
#[derive(Debug, Clone, Default)]
pub struct DetectOptions {
    /// Rule ids to run; empty = all.
    pub rules: Vec<String>,
    /// `rule_id` → parameter name → value text.
    pub params: BTreeMap<String, BTreeMap<String, String>>,
    /// Only evidence at or after this time (UTC micros).
    pub since_us: Option<i64>,
    /// Only evidence before this time (UTC micros).
    pub until_us: Option<i64>,
    /// Live counters for a progress display (the CLI's spinner).
    pub progress: Option<std::sync::Arc<DetectProgress>>,
}

/// Rules run so far, read from another thread; never affects findings.
#[derive(Debug, Default)]
pub struct DetectProgress {
    pub rules_total: std::sync::atomic::AtomicUsize,
    pub rules_done: std::sync::atomic::AtomicUsize,
    /// The rule running now.
    pub current: std::sync::Mutex<String>,
}

/// A session like `ctx` (its configuration, and its query planner, which
/// on a cluster sends plans there) with no tables registered yet.
fn fresh_context(ctx: &SessionContext) -> datafusion::error::Result<SessionContext> {
    use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider};
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state()).with_catalog_list(Arc::new(MemoryCatalogProviderList::new())).build();
    let fresh = SessionContext::new_with_state(state);
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema("public", Arc::new(MemorySchemaProvider::new()))?;
    fresh.register_catalog("datafusion", Arc::new(catalog));
    Ok(fresh)
}

/// A DataFusion session over one lake.
pub struct Engine {
    ctx: SessionContext,
}

fn finding_id(rule_id: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update([0u8]);
    h.update(key.as_bytes());
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn col_utf8(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    col_as(batch, name, &DataType::Utf8)
}

fn col_as(batch: &RecordBatch, name: &str, t: &DataType) -> Result<ArrayRef> {
    let idx = batch.schema().index_of(name).map_err(|_| err(format!("the rule's query returned no column {name:?}; rules must return: {}", EVIDENCE_COLUMNS.join(", "))))?;
    arrow::compute::cast(batch.column(idx), t).map_err(err)
}

fn s(a: &ArrayRef, i: usize) -> Option<String> {
    let a = a.as_any().downcast_ref::<StringArray>().expect("cast to utf8");
    if a.is_null(i) {
        None
    } else {
        Some(a.value(i).to_string())
    }
}

impl Engine {
    /// A session with every table of the lake (empty where absent).
    pub async fn open(lake: &Lake) -> Result<Engine> {
        let ctx = lake.session().await.map_err(err)?;
        for t in Table::ALL {
            if !ctx.table_exist(t.name()).map_err(err)? {
                let empty = MemTable::try_new(t.schema(), vec![vec![]]).map_err(err)?;
                ctx.register_table(t.name(), Arc::new(empty)).map_err(err)?;
            }
        }
        Ok(Engine { ctx })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Register every list as table `list_NAME`: those supplied, and those the
    /// rules declare (empty when not supplied), so every rule can run.
    pub fn register_lists(&self, rules: &[Rule], lists: &Lists) -> Result<()> {
        let mut names: BTreeSet<String> = lists.lists.keys().cloned().collect();
        for r in rules {
            names.extend(r.lists.keys().cloned());
        }
        for name in names {
            let table = format!("list_{name}");
            let mem = MemTable::try_new(lists::list_schema(), vec![vec![lists.batch(&name)]]).map_err(err)?;
            self.ctx.deregister_table(table.as_str()).map_err(err)?;
            self.ctx.register_table(table.as_str(), Arc::new(mem)).map_err(err)?;
        }
        Ok(())
    }

    /// Run SQL with named parameters bound (`$name`), never pasted; CTEs
    /// referenced more than once are computed once (see [`materialize`]).
    pub async fn sql(&self, sql: &str, params: Vec<(String, ScalarValue)>) -> Result<Vec<RecordBatch>> {
        materialize::run(&self.ctx, sql, &params).await
    }

    /// [`Engine::sql`] with the result's schema, which callers that hand the
    /// result on (Arrow streams) need even when no row comes back.
    pub async fn query(&self, sql: &str, params: Vec<(String, ScalarValue)>) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
        materialize::query(&self.ctx, sql, &params).await
    }

    /// Lists a rule declares but nobody registered are registered empty, so
    /// a caller that has no lists still runs every rule.
    fn ensure_lists(&self, rule: &Rule) -> Result<()> {
        for name in rule.lists.keys() {
            let table = format!("list_{name}");
            if !self.ctx.table_exist(table.as_str()).map_err(err)? {
                let mem = MemTable::try_new(lists::list_schema(), vec![vec![]]).map_err(err)?;
                self.ctx.register_table(table.as_str(), Arc::new(mem)).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Run one rule and return its findings.
    pub async fn run_rule(&self, rule: &Rule, opts: &DetectOptions) -> Result<Vec<Finding>> {
        self.ensure_lists(rule)?;
        let overrides = opts.params.get(&rule.id).cloned().unwrap_or_default();
        let params = rule.bound_params(&overrides).map_err(err)?;
        let pruned = match opts.since_us {
            Some(since) => self.since_context(rule, since).await?,
            None => None,
        };
        let ctx = pruned.as_ref().unwrap_or(&self.ctx);
        let batches = materialize::run(ctx, &rule.sql, &params).await.map_err(|e| err(format!("rule {} ({}): {e}", rule.id, rule.origin)))?;
        aggregate(rule, &batches, opts).map_err(|e| err(format!("rule {} ({}): {e}", rule.id, rule.origin)))
    }

    /// The session a rule runs in under `--since`, when its `[since]`
    /// section lets it skip old rows: every lake table (but those it reads
    /// whole) as a view of its day partitions from `lookback_days` before
    /// `since_us` on. The filter is on the partition column, so the Delta
    /// scan never opens the older files. None: the rule reads everything.
    pub async fn since_context(&self, rule: &Rule, since_us: i64) -> Result<Option<SessionContext>> {
        let Some(p) = &rule.since else { return Ok(None) };
        let from_us = since_us.saturating_sub(i64::from(p.lookback_days).saturating_mul(86_400_000_000));
        let first_day = mcpf_formats::time::date_of(from_us);
        let ctx = fresh_context(&self.ctx).map_err(err)?;
        let names = self.ctx.catalog("datafusion").and_then(|c| c.schema("public")).map(|s| s.table_names()).unwrap_or_default();
        for name in names {
            let provider = self.ctx.table_provider(name.as_str()).await.map_err(err)?;
            let prune = Table::from_name(&name).is_some_and(|t| !t.name().starts_with('_')) && !p.read_whole.iter().any(|w| *w == name);
            let provider = if prune {
                use datafusion::prelude::{col, lit};
                self.ctx.read_table(provider).map_err(err)?.filter(col("date").gt_eq(lit(first_day.as_str()))).map_err(err)?.into_view()
            } else {
                provider
            };
            ctx.register_table(name.as_str(), provider).map_err(err)?;
        }
        Ok(Some(ctx))
    }

    /// Run rules (all of `rules`, or those named in `opts.rules`).
    pub async fn detect(&self, rules: &[Rule], opts: &DetectOptions) -> Result<Vec<Finding>> {
        for id in &opts.rules {
            if !rules.iter().any(|r| &r.id == id) {
                let known: Vec<_> = rules.iter().map(|r| r.id.as_str()).collect();
                return Err(err(format!("no rule {id:?}; known rules: {}", known.join(", "))));
            }
        }
        let mut all = Vec::new();
        let chosen: Vec<&Rule> = rules.iter().filter(|r| opts.rules.is_empty() || opts.rules.contains(&r.id)).collect();
        if let Some(p) = &opts.progress {
            p.rules_total.store(chosen.len(), std::sync::atomic::Ordering::Relaxed);
        }
        for r in chosen {
            if let Some(p) = &opts.progress {
                *p.current.lock().unwrap_or_else(|e| e.into_inner()) = r.id.clone();
            }
            all.extend(self.run_rule(r, opts).await?);
            if let Some(p) = &opts.progress {
                p.rules_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        all.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.first_seen_us.cmp(&b.first_seen_us)).then(a.rule_id.cmp(&b.rule_id)).then(a.key.cmp(&b.key)));
        Ok(all)
    }
}

#[derive(Default)]
struct Acc {
    first: Option<i64>,
    last: Option<i64>,
    units: BTreeSet<String>,
    entities: Option<[Option<String>; 6]>,
    /// (ts, file, line) of the row the entities came from: the earliest,
    /// ties broken by position so every run picks the same row.
    first_primary: Option<(i64, String, i64)>,
    evidence: BTreeSet<Evidence>,
    evidence_total: u64,
}

/// Evidence rows → findings.
fn aggregate(rule: &Rule, batches: &[RecordBatch], opts: &DetectOptions) -> Result<Vec<Finding>> {
    let ts_type = DataType::Timestamp(TimeUnit::Microsecond, None);
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    for b in batches {
        if b.num_rows() == 0 {
            continue;
        }
        let key = col_utf8(b, "key")?;
        let ts = col_as(b, "ts", &ts_type)?;
        let ts = ts.as_any().downcast_ref::<TimestampMicrosecondArray>().expect("ts");
        let unit = col_utf8(b, "unit")?;
        let ents: Vec<ArrayRef> = ["address", "sender", "server", "version", "session", "detail"].iter().map(|n| col_utf8(b, n)).collect::<Result<_>>()?;
        let table = col_utf8(b, "evidence_table")?;
        let file = col_utf8(b, "source_file")?;
        let line = col_as(b, "source_line", &DataType::Int64)?;
        let line = line.as_any().downcast_ref::<Int64Array>().expect("i64");
        let off = col_as(b, "source_offset", &DataType::Int64)?;
        let off = off.as_any().downcast_ref::<Int64Array>().expect("i64");
        // Optional: rules over JSON documents return the element's pointer.
        let pointer = if b.schema().index_of("source_pointer").is_ok() { Some(col_utf8(b, "source_pointer")?) } else { None };
        for i in 0..b.num_rows() {
            let Some(k) = s(&key, i) else { continue };
            let t = if ts.is_null(i) { None } else { Some(ts.value(i)) };
            let primary = !unit.is_null(i);
            if primary {
                if let Some(t) = t {
                    if opts.since_us.is_some_and(|s| t < s) || opts.until_us.is_some_and(|u| t >= u) {
                        continue;
                    }
                }
            }
            let acc = groups.entry(k).or_default();
            if primary {
                acc.units.insert(s(&unit, i).unwrap_or_default());
                if let Some(t) = t {
                    acc.first = Some(acc.first.map_or(t, |f| f.min(t)));
                    acc.last = Some(acc.last.map_or(t, |l| l.max(t)));
                    let here = (t, s(&file, i).unwrap_or_default(), if line.is_null(i) { 0 } else { line.value(i) });
                    let entities = [s(&ents[0], i), s(&ents[1], i), s(&ents[2], i), s(&ents[3], i), s(&ents[4], i), s(&ents[5], i)];
                    // The earliest evidence names the finding; when several rows
                    // share it (one delivery matched to calls of two sessions),
                    // the largest entity tuple wins, so the choice never depends
                    // on the order rows arrive in (threads, a cluster's shuffles).
                    let earlier = acc.first_primary.as_ref().is_none_or(|f| here < *f);
                    let tie_won = acc.first_primary.as_ref() == Some(&here) && acc.entities.as_ref().is_some_and(|e| entities > *e);
                    if earlier || tie_won {
                        acc.first_primary = Some(here);
                        acc.entities = Some(entities);
                    }
                }
            }
            if let Some(f) = s(&file, i) {
                let ev = Evidence {
                    source_file: f,
                    source_line: if line.is_null(i) { 0 } else { line.value(i) },
                    source_offset: if off.is_null(i) { 0 } else { off.value(i) },
                    source_pointer: pointer.as_ref().and_then(|p| s(p, i)),
                    table: s(&table, i).unwrap_or_default(),
                    ts: t.map(mcpf_formats::time::to_rfc3339).unwrap_or_default(),
                    detail: s(&ents[5], i),
                };
                if acc.evidence.len() < MAX_EVIDENCE_PER_FINDING {
                    if acc.evidence.insert(ev) {
                        acc.evidence_total += 1;
                    }
                } else if !acc.evidence.contains(&ev) {
                    acc.evidence_total += 1;
                }
            }
        }
    }
    let mut out = Vec::new();
    for (key, acc) in groups {
        // A group with only supporting rows (all its counted rows outside
        // --since/--until) is not a finding.
        let (Some(first), Some(last), Some(ents)) = (acc.first, acc.last, acc.entities) else { continue };
        let [address, sender, server, version, session, detail] = ents;
        out.push(Finding {
            finding_id: finding_id(&rule.id, &key),
            rule_id: rule.id.clone(),
            severity: rule.severity,
            title: rule.title.clone(),
            key,
            first_seen: mcpf_formats::time::to_rfc3339(first),
            last_seen: mcpf_formats::time::to_rfc3339(last),
            first_seen_us: first,
            last_seen_us: last,
            count: acc.units.len() as u64,
            address,
            sender,
            server,
            version,
            session,
            detail,
            evidence_total: acc.evidence_total,
            rule_origin: rule.origin.clone(),
            references: rule.references.clone(),
            rule_description: rule.description.clone(),
            evidence: {
                // In time order, then by position.
                let mut ev: Vec<Evidence> = acc.evidence.into_iter().collect();
                ev.sort_by(|a, b| a.ts.cmp(&b.ts).then(a.source_file.cmp(&b.source_file)).then(a.source_line.cmp(&b.source_line)));
                ev
            },
        });
    }
    Ok(out)
}
