//! SQL errors that say what is wrong, where, and what exists instead.
//!
//! DataFusion's own text wraps its cause (`SQL error: ParserError("...")`,
//! `Error during planning: table 'datafusion.public.x' not found`). A user
//! of `sql`, a rule author or a notebook wants the message once, the line
//! and column with a caret under it, and for a table or column that does
//! not exist the names that do.

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

/// The message for a failed query `sql`; `tables` are the names it could
/// have used.
pub fn describe(e: &DataFusionError, sql: &str, tables: &[String]) -> String {
    let root = e.find_root();
    match root {
        DataFusionError::SQL(p, _) => {
            let msg = match p.as_ref() {
                ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
                ParserError::RecursionLimitExceeded => "the query nests too deeply".to_string(),
            };
            with_position(&format!("SQL syntax error: {}", strip_position(&msg)), &msg, sql)
        }
        DataFusionError::Plan(m) => match missing_table(m) {
            Some(name) => {
                let near = closest(&name, tables);
                let hint = near.map(|n| format!(" (did you mean {n}?)")).unwrap_or_default();
                format!("no table {name}{hint}; the lake's tables: {}", tables.join(", "))
            }
            None => format!("SQL error: {}", one_line(m)),
        },
        DataFusionError::SchemaError(s, _) => format!("SQL error: {}", one_line(&s.to_string())),
        other => format!("SQL error: {}", one_line(&other.to_string())),
    }
}

/// The table of `table 'datafusion.public.NAME' not found`, without the
/// catalog and schema the user never typed.
fn missing_table(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("table '")?;
    let name = rest.strip_suffix("' not found")?;
    Some(name.rsplit('.').next().unwrap_or(name).to_string())
}

/// The known name nearest to `name` (edit distance at most a third of its
/// length), for "did you mean".
fn closest<'a>(name: &str, names: &'a [String]) -> Option<&'a str> {
    let limit = (name.len() / 3).max(1);
    names.iter().map(|n| (edit_distance(&name.to_lowercase(), n), n)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, n)| n.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `... at Line: 1, Column: 8` (sqlparser's position) split off.
fn parse_position(msg: &str) -> Option<(usize, usize)> {
    let at = msg.rfind(" at Line: ")?;
    let (line, col) = msg[at + " at Line: ".len()..].split_once(", Column: ")?;
    let col: String = col.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, col.parse().ok()?))
}

fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at Line: ") {
        Some(at) => &msg[..at],
        None => msg,
    }
}

/// The message, then the query line the position points at with a caret
/// under the column.
fn with_position(head: &str, raw: &str, sql: &str) -> String {
    let Some((line, col)) = parse_position(raw) else { return head.to_string() };
    let Some(text) = sql.lines().nth(line.saturating_sub(1)) else { return format!("{head} (line {line}, column {col})") };
    let shown: String = text.chars().take(200).collect();
    let pad: String = shown.chars().take(col.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    format!("{head}\n  at line {line}, column {col}:\n    {shown}\n    {pad}^")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn error_of(sql: &str) -> String {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE mail_deliveries (recipient VARCHAR, ts BIGINT)").await.unwrap();
        let e = ctx.state().create_logical_plan(sql).await.unwrap_err();
        describe(&e, sql, &["mail_deliveries".to_string(), "tool_calls".to_string()])
    }

    #[tokio::test]
    async fn a_syntax_error_is_said_once_with_a_caret_under_its_column() {
        let m = error_of("SELECT (ts,\n  recipient\n  FROM mail_deliveries").await;
        assert!(m.starts_with("SQL syntax error: "), "{m}");
        assert_eq!(m.matches("SQL").count(), 1, "{m}");
        assert!(!m.contains("ParserError"), "{m}");
        assert!(m.contains("at line 3, column 3"), "{m}");
        let lines: Vec<&str> = m.lines().collect();
        let (text, caret) = (lines[lines.len() - 2], lines[lines.len() - 1]);
        assert_eq!(&text[caret.find('^').unwrap()..][..4], "FROM", "{m}");
    }

    #[tokio::test]
    async fn a_missing_table_lists_the_real_ones_and_the_nearest() {
        let m = error_of("SELECT * FROM mail_delivery").await;
        assert!(m.contains("no table mail_delivery (did you mean mail_deliveries?)"), "{m}");
        assert!(m.contains("tool_calls"), "{m}");
        assert!(!m.contains("datafusion.public"), "{m}");
    }

    #[tokio::test]
    async fn a_missing_column_names_the_valid_ones() {
        let m = error_of("SELECT recipent FROM mail_deliveries").await;
        assert!(m.starts_with("SQL error: "), "{m}");
        assert!(m.contains("recipient"), "{m}");
        assert_eq!(m.matches("rror").count(), 1, "{m}");
        assert!(!m.contains("Schema error"), "{m}");
    }
}
