//! Findings as OCSF Detection Finding events (class 2004, schema 1.5.0), one
//! JSON object per line, the shape SIEMs and data lakes (Security Lake,
//! Splunk, Sentinel) take OCSF in.
//!
//! Mapping: the rule is `finding_info.analytic` (type Rule), the stable
//! finding id is `finding_info.uid` and `metadata.uid` (so a SIEM de-duplicates
//! repeated runs), first/last seen are `start_time`/`end_time` and
//! `finding_info.first_seen_time`/`last_seen_time` (epoch ms), ATT&CK
//! references become `finding_info.attacks`, addresses `observables`, and each
//! evidence row an `evidences[].data` with its raw-log location.

use serde_json::{json, Value};

use crate::{Finding, Severity};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.5.0";

fn severity_id(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// Names of the parent techniques of the sub-techniques rules cite (a rule's
/// reference names only its sub-technique; OCSF wants the parent's name too).
const PARENT_TECHNIQUES: &[(&str, &str)] = &[
    ("T1078", "Valid Accounts"),
    ("T1114", "Email Collection"),
    ("T1195", "Supply Chain Compromise"),
    ("T1552", "Unsecured Credentials"),
    ("T1565", "Data Manipulation"),
    ("T1567", "Exfiltration Over Web Service"),
];

/// "ATT&CK T1114.003 (Email Forwarding Rule)" -> an OCSF attack object.
fn attack_of(reference: &str) -> Option<Value> {
    let rest = reference.strip_prefix("ATT&CK ")?;
    let (id, name) = match rest.split_once(' ') {
        Some((id, name)) => (id, name.trim().trim_start_matches('(').trim_end_matches(')')),
        None => (rest, ""),
    };
    if !id.starts_with('T') {
        return None;
    }
    let url = |t: &str| format!("https://attack.mitre.org/techniques/{}/", t.replace('.', "/"));
    Some(match id.split_once('.') {
        Some((parent, _)) => {
            let mut a = json!({"sub_technique": {"uid": id, "name": name, "src_url": url(id)}});
            if let Some((_, pname)) = PARENT_TECHNIQUES.iter().find(|(p, _)| *p == parent) {
                a["technique"] = json!({"uid": parent, "name": pname, "src_url": url(parent)});
            }
            a
        }
        None => json!({"technique": {"uid": id, "name": name, "src_url": url(id)}}),
    })
}

fn ms(us: i64) -> i64 {
    us.div_euclid(1000)
}

/// One finding as an OCSF Detection Finding.
pub fn detection_finding(f: &Finding) -> Value {
    let (sev_id, sev) = severity_id(f.severity);
    let mut observables = Vec::new();
    for (name, v) in [("address", &f.address), ("sender", &f.sender)] {
        if let Some(v) = v {
            observables.push(json!({"name": name, "type_id": 5, "type": "Email Address", "value": v}));
        }
    }
    for (name, v) in [("server", &f.server), ("version", &f.version), ("session", &f.session)] {
        if let Some(v) = v {
            observables.push(json!({"name": name, "type_id": 99, "type": "Other", "value": v}));
        }
    }
    let evidences: Vec<Value> = f
        .evidence
        .iter()
        .map(|e| {
            let mut data = json!({
                "table": e.table, "source_file": e.source_file, "source_line": e.source_line, "source_offset": e.source_offset, "ts": e.ts,
            });
            if let Some(p) = &e.source_pointer {
                data["source_pointer"] = json!(p);
            }
            if let Some(d) = &e.detail {
                data["detail"] = json!(d);
            }
            json!({"name": format!("{}:{}", e.source_file, e.source_line), "data": data})
        })
        .collect();
    let attacks: Vec<Value> = f.references.iter().filter_map(|r| attack_of(r)).collect();
    let mut data_sources: Vec<String> = f.evidence.iter().map(|e| e.table.clone()).collect();
    data_sources.sort();
    data_sources.dedup();
    let mut finding_info = json!({
        "uid": f.finding_id,
        "title": f.title,
        "desc": f.rule_description,
        "types": [f.rule_id],
        "first_seen_time": ms(f.first_seen_us),
        "last_seen_time": ms(f.last_seen_us),
        "analytic": {"uid": f.rule_id, "name": f.rule_id, "type_id": 1, "type": "Rule", "desc": f.title},
        "data_sources": data_sources,
    });
    if !attacks.is_empty() {
        finding_info["attacks"] = json!(attacks);
    }
    let mut event = json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": sev_id,
        "severity": sev,
        "status_id": 1,
        "status": "New",
        "time": ms(f.last_seen_us),
        "start_time": ms(f.first_seen_us),
        "end_time": ms(f.last_seen_us),
        "count": f.count,
        "message": f.detail.clone().unwrap_or_else(|| f.title.clone()),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": f.finding_id,
            "product": {"name": "mcp-forensics", "vendor_name": "mcp-forensics", "version": env!("CARGO_PKG_VERSION")},
            "log_name": "findings",
        },
        "finding_info": finding_info,
        "evidences": evidences,
        "unmapped": {"key": f.key, "rule_origin": f.rule_origin, "evidence_total": f.evidence_total, "references": f.references},
    });
    if !observables.is_empty() {
        event["observables"] = json!(observables);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cited_sub_technique_has_its_parent_named() {
        for r in crate::embedded_rules() {
            for reference in &r.references {
                if let Some(a) = attack_of(reference) {
                    assert!(a.get("technique").is_some(), "{}: add the parent of {reference:?} to PARENT_TECHNIQUES", r.id);
                }
            }
        }
        let a = attack_of("ATT&CK T1114.003 (Email Forwarding Rule)").unwrap();
        assert_eq!(a["technique"]["name"], "Email Collection");
        assert_eq!(a["sub_technique"]["src_url"], "https://attack.mitre.org/techniques/T1114/003/");
        assert!(attack_of("OWASP LLM03:2025 Supply Chain").is_none());
    }
}
