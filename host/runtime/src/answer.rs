//! Checks on what a plugin answers, before the host acts on it.
//!
//! The canonical ABI already guarantees the answer has the right shape; these checks are
//! about content the host would otherwise trust: sizes that could bloat logs and audit
//! records, reason codes that end up as metric labels, and injection plans whose header
//! names or values could smuggle a second header or override the transport's own. Any
//! failure makes the answer malformed, which the caller turns into a deny.

use crate::Template;
use crate::model::{Decision, InjectionPlan};

const MAX_REASON: usize = 64;
const MAX_MESSAGE: usize = 4096;
const MAX_TOOL_NAMES: usize = 100_000;
const MAX_TOOL_NAME: usize = 256;
const MAX_PLAN_ENTRIES: usize = 32;
const MAX_PLAN_VALUE: usize = 8192;
const MAX_INFO_FIELD: usize = 128;

/// Headers a provider plan may not set: the transport's own, the proxy's session and
/// protocol headers, and those that only make sense between client and proxy.
const RESERVED_HEADERS: [&str; 20] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "accept",
    "accept-encoding",
    "cookie",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "forwarded",
];

pub fn check_decision(decision: &Decision) -> Result<(), String> {
    let Decision::Deny(denial) = decision else {
        return Ok(());
    };
    if denial.reason.is_empty() || denial.reason.len() > MAX_REASON {
        return Err(format!("deny reason must be 1 to {MAX_REASON} bytes"));
    }
    if !denial
        .reason
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!("deny reason {:?} is not snake_case", denial.reason));
    }
    if denial.message.len() > MAX_MESSAGE {
        return Err(format!(
            "deny message is {} bytes, over the {MAX_MESSAGE}-byte limit",
            denial.message.len()
        ));
    }
    Ok(())
}

pub fn check_tool_names(names: &[String]) -> Result<(), String> {
    if names.len() > MAX_TOOL_NAMES {
        return Err(format!(
            "{} tool names, over the {MAX_TOOL_NAMES} limit",
            names.len()
        ));
    }
    match names.iter().find(|n| n.len() > MAX_TOOL_NAME) {
        Some(name) => Err(format!(
            "a tool name of {} bytes, over the {MAX_TOOL_NAME}-byte limit",
            name.len()
        )),
        None => Ok(()),
    }
}

pub fn check_info(name: &str, version: &str) -> Result<(), String> {
    for (what, value) in [("name", name), ("version", version)] {
        if value.is_empty() || value.len() > MAX_INFO_FIELD || value.chars().any(char::is_control) {
            return Err(format!(
                "plugin {what} must be 1 to {MAX_INFO_FIELD} printable characters"
            ));
        }
    }
    Ok(())
}

/// Checks a plan and parses its templates; header names come back lower-case.
pub fn check_plan(
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
) -> Result<InjectionPlan, String> {
    if headers.len() + query.len() > MAX_PLAN_ENTRIES {
        return Err(format!(
            "more than {MAX_PLAN_ENTRIES} headers and query parameters"
        ));
    }
    let mut plan = InjectionPlan::default();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_header_name_byte) {
            return Err(format!("{name:?} is not a valid header name"));
        }
        if RESERVED_HEADERS.contains(&name.as_str()) || name.starts_with("x-forwarded-") {
            return Err(format!("header {name:?} is reserved to the proxy"));
        }
        if plan.headers.iter().any(|(existing, _)| *existing == name) {
            return Err(format!("header {name:?} is set twice"));
        }
        check_value(&value)?;
        plan.headers.push((name, Template::parse(&value)?));
    }
    for (name, value) in query {
        if name.is_empty() || name.len() > MAX_PLAN_VALUE || name.chars().any(char::is_control) {
            return Err(format!("{name:?} is not a valid query parameter name"));
        }
        check_value(&value)?;
        plan.query.push((name, Template::parse(&value)?));
    }
    Ok(plan)
}

fn check_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_PLAN_VALUE {
        return Err(format!(
            "a value of {} bytes, over the {MAX_PLAN_VALUE}-byte limit",
            value.len()
        ));
    }
    // Visible ASCII, space and tab only: no CR or LF to start a second header, and no
    // bytes that HTTP libraries would reject at send time.
    if !value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err("a value holds a control or non-ASCII character".to_owned());
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Denial, DenyCode};

    fn deny(reason: &str, message: &str) -> Decision {
        Decision::Deny(Denial {
            code: DenyCode::ToolNotPermitted,
            reason: reason.to_owned(),
            message: message.to_owned(),
        })
    }

    #[test]
    fn decisions() {
        assert!(check_decision(&Decision::Allow).is_ok());
        assert!(check_decision(&deny("not_declared", "no")).is_ok());
        assert!(check_decision(&deny("", "no")).is_err());
        assert!(check_decision(&deny("Not Declared", "no")).is_err());
        assert!(check_decision(&deny("x", &"m".repeat(MAX_MESSAGE + 1))).is_err());
    }

    #[test]
    fn plans() {
        let h = |n: &str, v: &str| vec![(n.to_owned(), v.to_owned())];
        let plan = check_plan(h("Authorization", "Bearer {secret}"), vec![]).unwrap();
        assert_eq!(plan.headers[0].0, "authorization");
        assert!(check_plan(h("X-Api-Key", "{secret}\r\nX-Evil: 1"), vec![]).is_err());
        assert!(check_plan(h("Bad Name", "v"), vec![]).is_err());
        assert!(check_plan(h("Host", "evil.example"), vec![]).is_err());
        assert!(check_plan(h("X-Forwarded-For", "1.2.3.4"), vec![]).is_err());
        assert!(check_plan(h("Mcp-Session-Id", "x"), vec![]).is_err());
        assert!(check_plan(h("X-Key", "{secrte}"), vec![]).is_err());
        let twice = vec![
            ("a".to_owned(), "1".to_owned()),
            ("A".to_owned(), "2".to_owned()),
        ];
        assert!(check_plan(twice, vec![]).is_err());
        assert!(check_plan(vec![], h("api_key", "{secret}")).is_ok());
    }
}
