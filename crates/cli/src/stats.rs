//! `stats`: what the lake holds, counted per day, mail host, MCP server and
//! envelope sender (Hayabusa's metrics commands, for this domain). A
//! responder's first look at months of logs: which hosts and servers are
//! there at all, when, and which senders dominate.
//!
//! Each view is one fixed SQL query over documented tables; nothing the
//! user types becomes SQL.

/// One view of `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// Rows per day: mail deliveries, accepted messages, tool calls, MCP messages.
    Day,
    /// Per mail host or agent host: deliveries, messages, MCP messages, first and last time.
    Host,
    /// Per MCP server: sessions, tool calls, distinct tools, first and last time.
    Server,
    /// Per envelope sender: messages, deliveries, distinct recipients and domains, first and last time.
    Sender,
}

impl View {
    pub const ALL: [View; 4] = [View::Day, View::Host, View::Server, View::Sender];

    pub fn title(self) -> &'static str {
        match self {
            View::Day => "events per day",
            View::Host => "events per host",
            View::Server => "MCP servers",
            View::Sender => "envelope senders",
        }
    }

    /// The view's SQL: the most active first, days newest first (`--top`
    /// keeps the first rows of the result).
    pub fn sql(self) -> &'static str {
        match self {
            View::Day => {
                "WITH d AS (SELECT date, count(*) AS n FROM mail_deliveries GROUP BY date),
                      m AS (SELECT date, count(*) AS n FROM mail_messages GROUP BY date),
                      c AS (SELECT date, count(*) AS n FROM tool_calls GROUP BY date),
                      x AS (SELECT date, count(*) AS n FROM mcp_messages GROUP BY date),
                      days AS (SELECT date FROM d UNION SELECT date FROM m UNION SELECT date FROM c UNION SELECT date FROM x)
                 SELECT days.date, coalesce(d.n, 0) AS mail_deliveries, coalesce(m.n, 0) AS mail_messages,
                        coalesce(c.n, 0) AS tool_calls, coalesce(x.n, 0) AS mcp_messages
                 FROM days LEFT JOIN d ON d.date = days.date LEFT JOIN m ON m.date = days.date
                 LEFT JOIN c ON c.date = days.date LEFT JOIN x ON x.date = days.date
                 ORDER BY days.date DESC"
            }
            View::Host => {
                "WITH e AS (
                   SELECT coalesce(host, '(not recorded)') AS host, 'mail_delivery' AS kind, ts FROM mail_deliveries
                   UNION ALL SELECT coalesce(host, '(not recorded)'), 'mail_message', ts FROM mail_messages
                   UNION ALL SELECT coalesce(host, '(not recorded)'), 'mcp_message', ts FROM mcp_messages)
                 SELECT host, sum(CASE WHEN kind = 'mail_delivery' THEN 1 ELSE 0 END) AS mail_deliveries,
                        sum(CASE WHEN kind = 'mail_message' THEN 1 ELSE 0 END) AS mail_messages,
                        sum(CASE WHEN kind = 'mcp_message' THEN 1 ELSE 0 END) AS mcp_messages,
                        min(ts) AS first_seen, max(ts) AS last_seen
                 FROM e GROUP BY host ORDER BY count(*) DESC, host"
            }
            View::Server => {
                "WITH s AS (SELECT server_name, count(DISTINCT session_id) AS sessions, min(ts) AS first_seen, max(ts) AS last_seen FROM mcp_messages GROUP BY server_name),
                      c AS (SELECT server_name, count(*) AS tool_calls, count(DISTINCT tool_name) AS tools FROM tool_calls GROUP BY server_name)
                 SELECT s.server_name, s.sessions, coalesce(c.tool_calls, 0) AS tool_calls, coalesce(c.tools, 0) AS tools, s.first_seen, s.last_seen
                 FROM s LEFT JOIN c ON c.server_name = s.server_name
                 ORDER BY coalesce(c.tool_calls, 0) DESC, s.sessions DESC, s.server_name"
            }
            View::Sender => {
                "WITH m AS (SELECT sender, count(*) AS messages FROM mail_messages GROUP BY sender),
                      d AS (SELECT sender, count(*) AS deliveries, count(DISTINCT recipient) AS recipients,
                                   count(DISTINCT recipient_domain) AS domains, min(ts) AS first_seen, max(ts) AS last_seen
                            FROM mail_deliveries WHERE notification_of IS NULL GROUP BY sender)
                 SELECT CASE WHEN d.sender = '' THEN '<> (null sender)' ELSE d.sender END AS sender, coalesce(m.messages, 0) AS messages,
                        d.deliveries, d.recipients, d.domains, d.first_seen, d.last_seen
                 FROM d LEFT JOIN m ON m.sender = d.sender
                 ORDER BY 3 DESC, 1"
            }
        }
    }
}
