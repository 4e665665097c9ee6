//! Agent hosts' own records of the MCP calls they made: session transcripts
//! and event streams written by the agent (Claude Code, …), not by a tap on
//! the wire.
//!
//! An agent host records a call as its model saw it: one tool name that
//! joins the server and the tool (`mcp__mail__send_email`), the arguments,
//! and later the result. Parsers here turn each call and result into the
//! JSON-RPC `tools/call` request and response the host exchanged with the
//! server, so [`crate::mcp`] derives the same tables as for wire traces, and
//! keep the host's own name of the tool beside the split.

pub mod claude_code;

/// A host's tool name split into MCP server and tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    pub server: String,
    pub tool: String,
    /// The name splits more than one way (a server or tool name that itself
    /// holds the separator); the first split is used.
    pub ambiguous: bool,
}

impl SplitName {
    /// `exact` or `ambiguous`: `tool_calls.tool_name_split`.
    pub fn quality(&self) -> &'static str {
        if self.ambiguous {
            "ambiguous"
        } else {
            "exact"
        }
    }
}

/// Split `PREFIX<server>SEP<tool>` at the first `sep` after the prefix that
/// leaves both parts non-empty: Claude Code's (and opencode's, Hermes')
/// `mcp__<server>__<tool>`, Codex's older flat `mcp__<server>__<tool>`.
/// None when the name has not that shape (a built-in tool).
pub fn split_prefixed(name: &str, prefix: &str, sep: &str) -> Option<SplitName> {
    let rest = name.strip_prefix(prefix)?;
    // Every place the separator could be, overlapping ones too (`a___b` is
    // `a_`+`b` or `a`+`_b`).
    let cuts: Vec<usize> = (1..rest.len()).filter(|&i| rest.is_char_boundary(i) && rest[i..].starts_with(sep) && i + sep.len() < rest.len()).collect();
    let &first = cuts.first()?;
    Some(SplitName { server: rest[..first].to_string(), tool: rest[first + sep.len()..].to_string(), ambiguous: cuts.len() > 1 })
}

/// Claude Code's MCP tool names: `mcp__<server>__<tool>`, the server name
/// with characters outside `[A-Za-z0-9_-]` replaced by `_`.
pub fn split_claude_code(name: &str) -> Option<SplitName> {
    split_prefixed(name, "mcp__", "__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_names_split_at_the_first_separator() {
        let s = split_claude_code("mcp__mail__send_email").unwrap();
        assert_eq!((s.server.as_str(), s.tool.as_str(), s.quality()), ("mail", "send_email", "exact"));
        let s = split_claude_code("mcp__claude_ai_Slack__post_message").unwrap();
        assert_eq!((s.server.as_str(), s.tool.as_str(), s.ambiguous), ("claude_ai_Slack", "post_message", false));
        // A tool (or server) whose name holds `__` splits two ways.
        let s = split_claude_code("mcp__a__b__c").unwrap();
        assert_eq!((s.server.as_str(), s.tool.as_str(), s.quality()), ("a", "b__c", "ambiguous"));
        assert!(split_claude_code("mcp__a___b").unwrap().ambiguous);
        for builtin in ["Read", "Bash", "mcp__", "mcp__x", "mcp____t", "mcp__s__", "mcp_s_t"] {
            assert_eq!(split_claude_code(builtin), None, "{builtin}");
        }
    }
}
