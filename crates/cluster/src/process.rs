//! The scheduler and executor processes (`mcp-forensics cluster ...`):
//! Ballista's own, with the lake codec and object stores of this crate.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::JobId;
use ballista_core::utils::default_session_builder;
use ballista_core::serde::protobuf::{RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport};
use ballista_executor::execution_engine::{DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor};
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionStateBuilder;

use crate::codec::LakeCodec;
use crate::stores;

/// Where an executor finds its scheduler and how it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// The address it binds and advertises (loopback, or the host's own).
    pub bind_host: String,
    /// Its Arrow Flight port (shuffle data, results) and gRPC port.
    pub flight_port: u16,
    pub grpc_port: u16,
    /// Tasks it runs at once.
    pub concurrent_tasks: usize,
    /// Where it keeps shuffle files.
    pub work_dir: Option<String>,
}

/// Log lines of the cluster processes on stderr: warnings and errors, or
/// down to `MCPF_CLUSTER_LOG` (error, warn, info, debug, trace).
struct StderrLog {
    level: log::LevelFilter,
}

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {:<5} {}: {}", unix_time(), r.level(), r.target(), r.args());
        }
    }

    fn flush(&self) {}
}

/// Seconds.milliseconds since the epoch, as the log lines' first field.
fn unix_time() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

fn init_log() {
    let level = std::env::var("MCPF_CLUSTER_LOG").ok().and_then(|l| l.parse().ok()).unwrap_or(log::LevelFilter::Warn);
    if log::set_boxed_logger(Box::new(StderrLog { level })).is_ok() {
        log::set_max_level(level);
    }
}

/// Ballista's execution engine, reporting no per-operator metrics.
///
/// Why: tasks of one stage can report operator counts that differ from the
/// stage's (a union over an empty table, seen with `mcp.broad_credential`);
/// Ballista 55's scheduler then rejects the task's status and the job never
/// finishes. With no operator metrics it takes the status as is. The
/// results are unaffected; the scheduler's per-operator metrics are lost.
struct WithoutOperatorMetrics(Arc<dyn ExecutionEngine>);

impl ExecutionEngine for WithoutOperatorMetrics {
    fn create_query_stage_exec(&self, job_id: JobId, stage_id: usize, task_id: usize, partitions: Vec<usize>, plan: Arc<dyn ExecutionPlan>, work_dir: &str, config: &SessionConfig) -> datafusion::error::Result<Arc<dyn QueryStageExecutor>> {
        let inner = self.0.create_query_stage_exec(job_id, stage_id, task_id, partitions, plan, work_dir, config)?;
        Ok(Arc::new(StageWithoutMetrics(inner)))
    }
}

struct StageWithoutMetrics(Arc<dyn QueryStageExecutor>);

impl std::fmt::Debug for StageWithoutMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for StageWithoutMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for StageWithoutMetrics {
    async fn execute_query_stage(&self, task_id: usize, context: Arc<TaskContext>) -> datafusion::error::Result<Vec<ShuffleWritePartition>> {
        self.0.execute_query_stage(task_id, context).await
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        Vec::new()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.0.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> datafusion::error::Result<Vec<WindowStateReport>> {
        self.0.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.0.collect_column_stats()
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    init_log();
    // Plans are deep trees; Ballista's own binaries give their threads 32 MiB.
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(32 * 1024 * 1024).build()
}

/// Run a scheduler on `bind` until the process is stopped.
pub fn run_scheduler(bind: SocketAddr) -> Result<(), String> {
    let mut config = SchedulerConfig::default().with_hostname(bind.ip().to_string()).with_port(bind.port());
    config.bind_host = bind.ip().to_string();
    config.override_logical_codec = Some(Arc::new(LakeCodec::default()));
    let config = config.with_override_session_builder(Arc::new(|c| {
        let state = default_session_builder(c)?;
        Ok(SessionStateBuilder::new_from_existing(state).with_runtime_env(stores::runtime_env()?).build())
    }));
    let rt = runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let cluster = BallistaCluster::new_from_config(&config).await.map_err(|e| e.to_string())?;
        start_server(cluster, bind, Arc::new(config)).await.map_err(|e| format!("scheduler on {bind}: {e}"))
    })
}

/// Run an executor until the process is stopped (or its scheduler tells it to).
pub fn run_executor(opts: ExecutorOptions) -> Result<(), String> {
    let config = ExecutorProcessConfig {
        bind_host: opts.bind_host.clone(),
        external_host: Some(opts.bind_host.clone()),
        port: opts.flight_port,
        grpc_port: opts.grpc_port,
        scheduler_host: opts.scheduler_host.clone(),
        scheduler_port: opts.scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: opts.concurrent_tasks.max(1),
        work_dir: opts.work_dir.clone(),
        special_mod_log_level: "WARN".into(),
        print_thread_info: false,
        // Heartbeats every few seconds: a new executor is seen at once.
        executor_heartbeat_interval_seconds: 5,
        override_logical_codec: Some(Arc::new(LakeCodec::default())),
        // Every function a local session has (Ballista's default registry
        // lacks the nested ones, such as string_to_array, that rules use).
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&SessionStateBuilder::new().with_default_features().build()))),
        override_runtime_producer: Some(Arc::new(|_| stores::runtime_env())),
        override_execution_engine: Some(Arc::new(WithoutOperatorMetrics(Arc::new(DefaultExecutionEngine::new())))),
        ..Default::default()
    };
    let rt = runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        start_executor_process(Arc::new(config)).await.map_err(|e| format!("executor (scheduler {}:{}): {e}", opts.scheduler_host, opts.scheduler_port))
    })
}
