//! A short plain-language account of what the findings say, for `demo` and
//! for a responder who wants the story before the rows.

use mcpf_detect::output::terminal_safe;
use mcpf_detect::Finding;

fn fmt_gap(secs: i64) -> String {
    match secs {
        0 => "within a second".to_string(),
        s if s < 120 => format!("{s} seconds"),
        s if s < 7200 => format!("{} minutes", s / 60),
        s if s < 172_800 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// Build the account from findings (empty findings → says so).
pub fn account(findings: &[Finding]) -> String {
    let t = |s: &Option<String>| terminal_safe(s.as_deref().unwrap_or("?"));
    let mut lines = vec!["What happened".to_string(), "-------------".to_string()];
    let unintended: Vec<&Finding> = findings.iter().filter(|f| f.rule_id == "mail.unintended_recipient").collect();
    let bcc: Vec<&Finding> = findings.iter().filter(|f| f.rule_id == "mail.constant_bcc").collect();
    let versions: Vec<&Finding> = findings.iter().filter(|f| f.rule_id == "mcp.server_version_change").collect();
    let drift: Vec<&Finding> = findings.iter().filter(|f| f.rule_id == "mcp.tool_definition_drift").collect();
    if unintended.is_empty() && bcc.is_empty() && versions.is_empty() && drift.is_empty() {
        lines.push("No rule fired: every delivered recipient of agent mail was one the agent asked for.".into());
        return lines.join("\n");
    }
    for f in &unintended {
        lines.push(format!(
            "- {} received {} message(s) that agents sent through MCP server {} although no tool call named it; the first at {} (server version {}), the last at {}.",
            t(&f.address),
            f.count,
            t(&f.server),
            f.first_seen,
            t(&f.version),
            f.last_seen
        ));
        // The version change that preceded it, if any.
        if let Some(v) = versions
            .iter()
            // Syslog stamps have whole seconds: allow one second of skew.
            .filter(|v| v.server == f.server && v.version == f.version && v.first_seen_us <= f.first_seen_us + 1_000_000)
            .max_by_key(|v| v.first_seen_us)
        {
            lines.push(format!(
                "  It began {} after {} started answering as version {} ({}); that version is where to look.",
                fmt_gap((f.first_seen_us - v.first_seen_us).max(0) / 1_000_000),
                t(&v.server),
                t(&v.version),
                terminal_safe(v.detail.as_deref().unwrap_or(""))
            ));
        }
    }
    for f in &bcc {
        lines.push(format!("- Mail logs alone show the same pattern: {}.", terminal_safe(f.detail.as_deref().unwrap_or(&f.key))));
    }
    for v in &versions {
        if !unintended.iter().any(|u| u.server == v.server && u.version == v.version) {
            lines.push(format!("- {} (no unintended recipients followed).", terminal_safe(v.detail.as_deref().unwrap_or(&v.key))));
        }
    }
    for d in &drift {
        lines.push(format!("- {}.", terminal_safe(d.detail.as_deref().unwrap_or(&d.key))));
    }
    lines.push("Every finding lists its evidence as file:line of the raw logs; `detect --format json` gives all of it.".into());
    lines.join("\n")
}
