//! Common table expressions referenced more than once are computed once.
//!
//! DataFusion inlines every reference to a CTE, so a rule that reads its
//! `deliveries` CTE from five places scans and joins the lake five times
//! (DuckDB materializes such CTEs instead; on the benchmark the same rule text
//! ran 10-20x faster there). Rules stay plain SQL that any DataFusion session
//! runs unchanged; the engine, before running one, evaluates each top-level
//! CTE that is referenced two or more times into an in-memory table, points
//! the later references at it, and runs the rest. Memory holds those
//! intermediate results, as in DuckDB.
//!
//! The rewrite is conservative: recursive CTEs, nested WITH clauses, and a CTE
//! named like an existing table are left to DataFusion as written, and if the
//! rewritten form fails to plan for any reason the original text is run, so
//! the rewrite can change speed but never results or error messages.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{visit_relations, Cte, Ident, ObjectName, ObjectNamePart, Query, Statement, TableAlias, TableFactor, Visit, VisitMut, Visitor, VisitorMut, With};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::{err, Result};

static FALLBACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many rewritten queries failed and were run as written instead (tests
/// check that every built-in rule takes the fast path).
pub fn fallbacks() -> u64 {
    FALLBACKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// What rule packs, `sql`, `rules test` and Python's `sql()` may run:
/// queries only. A rule file is data that may come from anywhere (a
/// downloaded pack), and the lake is evidence: no COPY TO a file, no
/// INSERT/UPDATE/DELETE into a table, no CREATE (EXTERNAL) TABLE/VIEW, no
/// DROP, no SET of session or object-store options.
pub fn read_only() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// Plan `sql` and refuse anything but a query, before anything executes.
async fn plan_read_only(ctx: &SessionContext, sql: &str) -> Result<datafusion::logical_expr::LogicalPlan> {
    let plan = ctx.state().create_logical_plan(sql).await.map_err(|e| err(crate::sql_error::describe(&e, sql, &table_names(ctx))))?;
    if read_only().verify_plan(&plan).is_err() {
        return Err(err(format!(
            "refused: {} is not a query. The lake is evidence and rules are data: only SELECT, WITH, VALUES, EXPLAIN, SHOW and DESCRIBE run here (no COPY, INSERT, UPDATE, DELETE, CREATE, DROP or SET); to export results use --format csv|json|jsonl > FILE",
            plan.display().to_string().split([':', '\n']).next().unwrap_or("the statement").trim()
        )));
    }
    Ok(plan)
}

/// Run SQL as written, with bound parameters (`$name`); queries only.
async fn run_with_schema(ctx: &SessionContext, sql: &str, params: &[(String, ScalarValue)]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let df = planned(ctx, sql, params).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(|e| err(format!("query failed: {e}")))?;
    Ok((schema, batches))
}

/// The query as a DataFrame with its parameters bound, not run yet.
async fn planned(ctx: &SessionContext, sql: &str, params: &[(String, ScalarValue)]) -> Result<datafusion::dataframe::DataFrame> {
    let plan = plan_read_only(ctx, sql).await?;
    let df = ctx.execute_logical_plan(plan).await.map_err(|e| err(crate::sql_error::describe(&e, sql, &table_names(ctx))))?;
    if params.is_empty() {
        Ok(df)
    } else {
        df.with_param_values(params.to_vec()).map_err(|e| err(format!("parameter error: {e}")))
    }
}

/// The tables a query over `ctx` can name (for "no table X; the tables: ...").
pub fn table_names(ctx: &SessionContext) -> Vec<String> {
    let mut names: Vec<String> = ctx.catalog("datafusion").and_then(|c| c.schema("public")).map(|s| s.table_names()).unwrap_or_default();
    names.retain(|n| !n.starts_with("__mcpf"));
    names.sort();
    names
}

/// [`query`] as a stream of batches: a query with nothing to rewrite runs
/// batch by batch, so a caller that prints the first rows and counts the
/// rest never holds the whole result (`sql "SELECT * FROM mail_deliveries"`).
pub async fn stream(ctx: &SessionContext, sql: &str, params: &[(String, ScalarValue)]) -> Result<(SchemaRef, datafusion::execution::SendableRecordBatchStream)> {
    if rewrites(ctx) && parse(sql).is_some() {
        let (schema, batches) = query(ctx, sql, params).await?;
        let stream = datafusion::physical_plan::memory::MemoryStream::try_new(batches, schema.clone(), None).map_err(|e| err(format!("query failed: {e}")))?;
        return Ok((schema, Box::pin(stream)));
    }
    let df = planned(ctx, sql, params).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await.map_err(|e| err(format!("query failed: {e}")))?;
    Ok((schema, stream))
}

/// Whether shared CTEs are computed here into in-memory tables: not in a
/// session whose plans run on a cluster ([`mcpf_lake::RemoteExecution`]),
/// which would ship those tables inside every plan; there the engine plans
/// the CTEs as written.
fn rewrites(ctx: &SessionContext) -> bool {
    ctx.state().config().get_extension::<mcpf_lake::RemoteExecution>().is_none()
}

/// The name a relation reference resolves by: unquoted identifiers are
/// case-insensitive (DataFusion lower-cases them), quoted ones exact.
fn ident_key(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

fn single_name(o: &ObjectName) -> Option<String> {
    match o.0.as_slice() {
        [ObjectNamePart::Identifier(i)] => Some(ident_key(i)),
        _ => None,
    }
}

fn count_refs<V: Visit>(v: &V, name: &str) -> usize {
    let mut n = 0;
    let _ = visit_relations(v, |r| {
        if single_name(r).as_deref() == Some(name) {
            n += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    n
}

/// Points references to a CTE at its materialized table. A reference with no
/// alias gets the CTE's name as its alias, so `d.col` still resolves.
struct RenameRefs<'a> {
    name: &'a str,
    to: &'a str,
}

impl VisitorMut for RenameRefs<'_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, f: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = f {
            if single_name(name).as_deref() == Some(self.name) {
                let original = match name.0.as_slice() {
                    [ObjectNamePart::Identifier(i)] => i.clone(),
                    _ => return ControlFlow::Continue(()),
                };
                *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', self.to))]);
                if alias.is_none() {
                    *alias = Some(TableAlias { explicit: true, name: original, columns: vec![], at: None });
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn rename_refs<V: VisitMut>(v: &mut V, name: &str, to: &str) {
    let _ = v.visit(&mut RenameRefs { name, to });
}

/// Counts queries that carry a WITH clause.
struct WithCounter(usize);

impl Visitor for WithCounter {
    type Break = ();
    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if q.with.is_some() {
            self.0 += 1;
        }
        ControlFlow::Continue(())
    }
}

/// A rule query split for materialization, or None when it should run as written.
fn parse(sql: &str) -> Option<(Box<Query>, With)> {
    let mut stmts = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    if stmts.len() != 1 {
        return None;
    }
    let Statement::Query(mut q) = stmts.pop()? else { return None };
    let mut withs = WithCounter(0);
    let _ = q.visit(&mut withs);
    if withs.0 != 1 {
        return None;
    }
    let with = q.with.take()?;
    if with.recursive {
        return None;
    }
    Some((q, with))
}

/// Run a query, computing each top-level CTE referenced more than once a
/// single time (see the module docs). Same results as the text run as written.
pub async fn run(ctx: &SessionContext, sql: &str, params: &[(String, ScalarValue)]) -> Result<Vec<RecordBatch>> {
    Ok(query(ctx, sql, params).await?.1)
}

/// [`run`], with the result's schema (known even when no row comes back).
pub async fn query(ctx: &SessionContext, sql: &str, params: &[(String, ScalarValue)]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    match run_materialized(ctx, sql, params).await {
        None => run_with_schema(ctx, sql, params).await,
        Some(Ok(b)) => Ok(b),
        // Never let the rewrite decide an error: run the text as written.
        Some(Err(_)) => {
            FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            run_with_schema(ctx, sql, params).await
        }
    }
}

/// The rewritten run alone: None when the query has nothing to rewrite.
async fn run_materialized(ctx: &SessionContext, sql: &str, params: &[(String, ScalarValue)]) -> Option<Result<(SchemaRef, Vec<RecordBatch>)>> {
    if !rewrites(ctx) {
        return None;
    }
    let (query, with) = parse(sql)?;
    let mut registered: Vec<String> = Vec::new();
    let out = run_rewritten(ctx, query, with, params, &mut registered).await;
    for t in &registered {
        let _ = ctx.deregister_table(t.as_str());
    }
    Some(out)
}

async fn run_rewritten(ctx: &SessionContext, mut query: Box<Query>, with: With, params: &[(String, ScalarValue)], registered: &mut Vec<String>) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut ctes: Vec<Cte> = with.cte_tables;
    let mut kept: Vec<Cte> = Vec::new();
    let with_token = with.with_token;
    for i in 0..ctes.len() {
        let name = ident_key(&ctes[i].alias.name);
        let later: usize = ctes[i + 1..].iter().map(|c| count_refs(&c.query, &name)).sum::<usize>() + count_refs(&query, &name);
        let shadows_table = ctx.table_exist(name.as_str()).unwrap_or(true);
        if later < 2 || shadows_table || !ctes[i].alias.columns.is_empty() {
            kept.push(ctes[i].clone());
            continue;
        }
        let mut sub = (*ctes[i].query).clone();
        if !kept.is_empty() {
            sub.with = Some(With { with_token: with_token.clone(), recursive: false, cte_tables: kept.clone() });
        }
        let (schema, batches) = run_with_schema(ctx, &sub.to_string(), params).await?;
        let internal = format!("__mcpf_cte_{}_{name}", SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mem = MemTable::try_new(schema, vec![batches]).map_err(err)?;
        ctx.register_table(internal.as_str(), Arc::new(mem)).map_err(err)?;
        registered.push(internal.clone());
        for c in ctes[i + 1..].iter_mut() {
            rename_refs(&mut c.query, &name, &internal);
        }
        rename_refs(&mut query, &name, &internal);
    }
    if !kept.is_empty() {
        query.with = Some(With { with_token, recursive: false, cte_tables: kept });
    }
    run_with_schema(ctx, &query.to_string(), params).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SessionContext {
        let ctx = SessionContext::new();
        let b = RecordBatch::try_from_iter(vec![("x", Arc::new(arrow::array::Int64Array::from(vec![1, 2, 3, 4])) as arrow::array::ArrayRef)]).unwrap();
        ctx.register_batch("t", b).unwrap();
        ctx
    }

    fn rows(b: &[RecordBatch]) -> Vec<String> {
        let s = arrow::util::pretty::pretty_format_batches(b).unwrap().to_string();
        s.lines().map(str::to_string).collect()
    }

    #[tokio::test]
    async fn same_results_as_written() {
        let c = ctx();
        let p = vec![("min".to_string(), ScalarValue::Int64(Some(2)))];
        for sql in [
            "WITH a AS (SELECT x FROM t WHERE x >= $min), b AS (SELECT x * 10 AS y FROM a) SELECT a.x, b.y FROM a JOIN b ON b.y = a.x * 10 UNION ALL SELECT x, x * 2 AS y FROM a ORDER BY 1, 2",
            "WITH a AS (SELECT x FROM t), c AS (SELECT count(*) AS n FROM a) SELECT n FROM c",
            // A CTE named like a table is left alone.
            "WITH t AS (SELECT x FROM t WHERE x > 2) SELECT * FROM t JOIN t AS u USING (x) ORDER BY x",
            "SELECT x FROM t WHERE x = $min",
            // Unaliased references qualify columns by the CTE's name.
            "WITH d AS (SELECT x FROM t WHERE x > 1) SELECT d.x, e.x AS y FROM d JOIN d AS e ON e.x = d.x + 1 WHERE d.x IN (SELECT d.x FROM d) ORDER BY d.x",
        ] {
            let plain = run_with_schema(&c, sql, &p).await.unwrap().1;
            let fast = match run_materialized(&c, sql, &p).await {
                Some(r) => r.unwrap_or_else(|e| panic!("rewrite failed for {sql}: {e}")).1,
                None => run(&c, sql, &p).await.unwrap(),
            };
            assert_eq!(rows(&plain), rows(&fast), "{sql}");
        }
        // Internal tables are gone afterwards.
        assert!(c.catalog("datafusion").unwrap().schema("public").unwrap().table_names().iter().all(|t| !t.starts_with("__mcpf")));
        // Queries only: nothing is written, created or set.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        for sql in [
            format!("COPY (SELECT x FROM t) TO '{}' STORED AS CSV", target.display()),
            format!("CREATE EXTERNAL TABLE e (x BIGINT) STORED AS CSV LOCATION '{}'", dir.path().display()),
            "INSERT INTO t VALUES (5)".to_string(),
            "CREATE TABLE n AS SELECT 1 AS x".to_string(),
            "CREATE VIEW v AS SELECT x FROM t".to_string(),
            "DROP TABLE t".to_string(),
            "SET datafusion.execution.batch_size = 1".to_string(),
            "EXPLAIN ANALYZE INSERT INTO t VALUES (6)".to_string(),
            "WITH a AS (SELECT x FROM t) INSERT INTO t SELECT x FROM a".to_string(),
        ] {
            let e = run(&c, &sql, &[]).await.expect_err(&sql).to_string();
            assert!(e.contains("refused") || e.contains("SQL error"), "{sql}: {e}");
        }
        assert!(!target.exists(), "COPY wrote a file");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(rows(&run(&c, "SELECT count(*) AS n FROM t", &[]).await.unwrap())[3], "| 4 |");
        assert!(c.table_exist("t").unwrap() && !c.table_exist("n").unwrap() && !c.table_exist("v").unwrap() && !c.table_exist("e").unwrap());
        // Errors are the original query's.
        let e = run(&c, "WITH a AS (SELECT nope FROM t) SELECT * FROM a JOIN a AS b USING (nope)", &[]).await.unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
