//! `timeline --entity X`: everything the lake knows about one address,
//! server, session or message id, in time order, each row pointing at its raw
//! log line. The entity kind is not asked for: an address is matched as
//! recipient, sender, original recipient and tool-call argument; a server by
//! name or package; a session by id; a message id on deliveries and calls.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::scalar::ScalarValue;

use crate::{err, Engine, Finding, Result};

/// The timeline SQL: one row per event with `$e` (the entity, lower case,
/// without angle brackets) in any entity column. Bound, never pasted.
pub const TIMELINE_SQL: &str = r#"
WITH calls_of_entity AS (
  SELECT call_id FROM intended_recipients WHERE address = $e
  UNION SELECT call_id FROM call_message_ids WHERE lower(message_id) = $e
),
message_ids_of_entity AS (
  SELECT lower(message_id) AS mid FROM call_message_ids WHERE lower(server_name) = $e OR lower(session_id) = $e OR call_id IN (SELECT call_id FROM calls_of_entity)
)
SELECT ts, 'MCP session start' AS timestamp_desc,
       concat('session ', session_id, ' of ', server_name,
              CASE WHEN launch_command IS NOT NULL THEN concat(' launched as: ', launch_command) ELSE '' END,
              CASE WHEN server_version IS NOT NULL THEN concat('; serverInfo.version ', server_version) ELSE '' END) AS message,
       'mcp_sessions' AS "table", source_file, source_line, source_offset, source_pointer
FROM mcp_sessions WHERE lower(server_name) = $e OR lower(session_id) = $e OR lower(package_name) = $e
UNION ALL
SELECT ts, 'MCP client configuration',
       concat(client, ' configures ', server_name, ' as ', coalesce(package_spec, url, command, '?')),
       'mcp_server_configs', source_file, source_line, source_offset, source_pointer
FROM mcp_server_configs WHERE lower(server_name) = $e OR lower(package_name) = $e
UNION ALL
SELECT ts, 'Tool call',
       concat('tools/call ', coalesce(tool_name, '?'), ' on ', server_name, coalesce(concat(' ', server_version), ''), ' (call ', call_id, '): ', substr(coalesce(arguments_json, ''), 1, 400),
              CASE WHEN is_error THEN ' -> error' ELSE '' END),
       'tool_calls', source_file, source_line, source_offset, source_pointer
FROM tool_calls WHERE lower(server_name) = $e OR lower(session_id) = $e OR call_id = $e OR call_id IN (SELECT call_id FROM calls_of_entity)
UNION ALL
SELECT ts, 'Tool definition listed',
       concat('tools/list: ', server_name, '/', tool_name, ' definition ', substr(definition_sha256, 1, 12), ': ', substr(coalesce(description, ''), 1, 300)),
       'tool_definitions', source_file, source_line, source_offset, source_pointer
FROM tool_definitions WHERE lower(server_name) = $e OR lower(session_id) = $e
UNION ALL
SELECT ts, 'Mail delivery',
       concat(coalesce(sender, ''), ' -> ', recipient, CASE WHEN orig_recipient IS NOT NULL THEN concat(' (for ', orig_recipient, ')') ELSE '' END,
              ' [', recipient_role, '] ', status, CASE WHEN message_id IS NOT NULL THEN concat(' message-id ', message_id) ELSE '' END,
              CASE WHEN relay IS NOT NULL THEN concat(' via ', relay) ELSE '' END,
              CASE WHEN delivery_kind = 'filter_hop' THEN concat(' (content-filter hop, re-queued as ', coalesce(next_queue_id, '?'), ')') ELSE '' END),
       'mail_deliveries', source_file, source_line, source_offset, source_pointer
FROM mail_deliveries
WHERE recipient = $e OR sender = $e OR orig_recipient = $e OR lower(message_id) = $e OR lower(queue_id) = $e OR lower(next_queue_id) = $e
   OR lower(message_id) IN (SELECT mid FROM message_ids_of_entity)
UNION ALL
SELECT last_seen, 'Mail message',
       concat('message ', queue_id, ' on ', coalesce(host, '?'), ' from ', coalesce(sender, '?'), ': ', final_state, ' (', CAST(recipients AS VARCHAR), ' recipient(s), ',
              CAST(delivered AS VARCHAR), ' delivered)', CASE WHEN filtered_from IS NOT NULL THEN concat(', re-injected from ', filtered_from) ELSE '' END,
              CASE WHEN filtered_to IS NOT NULL THEN concat(', filtered into ', filtered_to) ELSE '' END),
       'mail_messages', source_file, source_line, source_offset, source_pointer
FROM mail_messages
WHERE sender = $e OR lower(message_id) = $e OR lower(queue_id) = $e OR lower(filtered_to) = $e OR lower(filtered_from) = $e
   OR lower(message_id) IN (SELECT mid FROM message_ids_of_entity)
UNION ALL
SELECT ts, 'Mail event',
       concat(event, coalesce(concat(' at ', stage), ''), ': ', coalesce(sender, '?'), ' -> ', coalesce(recipient, '?'),
              coalesce(concat(' redirected to ', redirect_to), ''), coalesce(concat(' from ', client), ''), ' (', reason, ')'),
       'mail_events', source_file, source_line, source_offset, source_pointer
FROM mail_events
WHERE sender = $e OR recipient = $e OR redirect_to = $e OR lower(queue_id) = $e
"#;

/// The delivery rows of the timeline, whole (every `mail_deliveries`
/// column), in time order: what `timeline --format ocsf` writes as OCSF
/// Email Activity. The same entity match as [`TIMELINE_SQL`]'s deliveries.
pub const TIMELINE_DELIVERIES_SQL: &str = r#"
WITH calls_of_entity AS (
  SELECT call_id FROM intended_recipients WHERE address = $e
  UNION SELECT call_id FROM call_message_ids WHERE lower(message_id) = $e
),
message_ids_of_entity AS (
  SELECT lower(message_id) AS mid FROM call_message_ids WHERE lower(server_name) = $e OR lower(session_id) = $e OR call_id IN (SELECT call_id FROM calls_of_entity)
)
SELECT * FROM mail_deliveries
WHERE recipient = $e OR sender = $e OR orig_recipient = $e OR lower(message_id) = $e OR lower(queue_id) = $e OR lower(next_queue_id) = $e
   OR lower(message_id) IN (SELECT mid FROM message_ids_of_entity)
ORDER BY ts, source_file, source_offset
"#;

/// The entity's delivery rows (see [`TIMELINE_DELIVERIES_SQL`]).
pub async fn timeline_deliveries(engine: &Engine, entity: &str) -> Result<Vec<RecordBatch>> {
    let e = normalize_entity(entity);
    if e.is_empty() {
        return Err(err("--entity is empty: give an address, server name, session id or message id"));
    }
    engine.sql(TIMELINE_DELIVERIES_SQL, vec![("e".to_string(), ScalarValue::Utf8(Some(e)))]).await
}

/// Normalize what the user typed: trim, drop angle brackets, lower case.
pub fn normalize_entity(entity: &str) -> String {
    entity.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase()
}

/// Whether a finding is about the entity.
pub fn finding_matches(f: &Finding, e: &str) -> bool {
    [&f.address, &f.sender, &f.server, &f.session].iter().any(|v| v.as_deref().is_some_and(|v| v.to_lowercase() == e))
        || f.key.to_lowercase().split(|c: char| c.is_whitespace() || c == ':' || c == '/').any(|w| w == e)
}

/// The timeline as one Arrow batch: ts, timestamp_desc, message, table,
/// source_file, source_line, source_offset, source_pointer; in time order.
/// `findings` (from a detection run) are merged in at their first sighting.
pub async fn timeline(engine: &Engine, entity: &str, findings: &[Finding]) -> Result<RecordBatch> {
    let e = normalize_entity(entity);
    if e.is_empty() {
        return Err(err("--entity is empty: give an address, server name, session id or message id"));
    }
    let batches = engine.sql(TIMELINE_SQL, vec![("e".to_string(), ScalarValue::Utf8(Some(e.clone())))]).await?;
    struct Row {
        ts: i64,
        desc: String,
        message: String,
        table: String,
        file: String,
        line: i64,
        offset: i64,
        pointer: Option<String>,
    }
    let mut rows: Vec<Row> = Vec::new();
    for b in &batches {
        let ts = arrow::compute::cast(b.column(0), &DataType::Timestamp(TimeUnit::Microsecond, None)).map_err(err)?;
        let ts = ts.as_any().downcast_ref::<TimestampMicrosecondArray>().expect("ts");
        let text = |i: usize| -> Result<ArrayRef> { arrow::compute::cast(b.column(i), &DataType::Utf8).map_err(err) };
        let int = |i: usize| -> Result<ArrayRef> { arrow::compute::cast(b.column(i), &DataType::Int64).map_err(err) };
        let (desc, msg, table, file, ptr) = (text(1)?, text(2)?, text(3)?, text(4)?, text(7)?);
        let (line, off) = (int(5)?, int(6)?);
        let s = |a: &ArrayRef, i: usize| a.as_any().downcast_ref::<StringArray>().and_then(|a| (!a.is_null(i)).then(|| a.value(i).to_string()));
        let n = |a: &ArrayRef, i: usize| a.as_any().downcast_ref::<Int64Array>().map(|a| if a.is_null(i) { 0 } else { a.value(i) }).unwrap_or(0);
        for i in 0..b.num_rows() {
            rows.push(Row {
                ts: if ts.is_null(i) { 0 } else { ts.value(i) },
                desc: s(&desc, i).unwrap_or_default(),
                message: s(&msg, i).unwrap_or_default(),
                table: s(&table, i).unwrap_or_default(),
                file: s(&file, i).unwrap_or_default(),
                line: n(&line, i),
                offset: n(&off, i),
                pointer: s(&ptr, i),
            });
        }
    }
    for f in findings.iter().filter(|f| finding_matches(f, &e)) {
        let first = f.evidence.first();
        rows.push(Row {
            ts: f.first_seen_us,
            desc: "Finding first seen".into(),
            message: format!("[{}] {} {}: {} ({} counted until {})", f.severity.name().to_uppercase(), f.rule_id, f.finding_id, f.detail.as_deref().unwrap_or(&f.title), f.count, f.last_seen),
            table: "findings".into(),
            file: first.map(|e| e.source_file.clone()).unwrap_or_default(),
            line: first.map(|e| e.source_line).unwrap_or(0),
            offset: first.map(|e| e.source_offset).unwrap_or(0),
            pointer: first.and_then(|e| e.source_pointer.clone()),
        });
    }
    rows.sort_by(|a, b| a.ts.cmp(&b.ts).then(a.file.cmp(&b.file)).then(a.line.cmp(&b.line)).then(a.table.cmp(&b.table)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("timestamp_desc", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("source_pointer", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.ts)).with_timezone("UTC")),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.desc.as_str()))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.message.as_str()))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.table.as_str()))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.file.as_str()))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.line))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.offset))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.pointer.as_deref()))),
        ],
    )
    .map_err(err)
}
