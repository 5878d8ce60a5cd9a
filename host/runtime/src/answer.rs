//! What a plugin answers, and the checks on it before the host acts on it.
//!
//! A [`Decider`](crate::Decider) hands back answers as the plugin gave them: a decision, a
//! [`RawToolSet`], a [`RawPlan`] or a refusal, and `describe`'s [`Description`]. The chain
//! checks every one of them here, whichever decider answered. The canonical ABI already
//! guarantees an answer has the right shape; these checks are about content the host
//! would otherwise trust: sizes that could bloat logs and audit records, reason codes that
//! end up as metric labels, and injection plans whose header names or values could
//! smuggle a second header or override the transport's own. Any failure makes the answer
//! [`Malformed`], which the chain turns into a deny.

use portcullis_model::{Decision, InjectionPlan, Template, TemplateError, ToolSet};

const MAX_REASON: usize = 64;
const MAX_MESSAGE: usize = 4096;
const MAX_TOOL_NAMES: usize = 100_000;
const MAX_TOOL_NAME: usize = 256;
const MAX_PLAN_ENTRIES: usize = 32;
const MAX_PLAN_VALUE: usize = 8192;
const MAX_INFO_FIELD: usize = 128;
const MAX_REFUSAL: usize = 4096;

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

/// A tool set as a policy answered it: names unchecked, duplicates kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawToolSet {
    All,
    Only(Vec<String>),
}

/// An injection plan as a provider answered it: names unchecked, templates unparsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawPlan {
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

/// What a plugin says about itself at admission.
pub(crate) struct Description {
    pub name: String,
    pub version: String,
    /// Whether `request` needs tool arguments (policy plugins only).
    pub reads_arguments: bool,
}

/// Why an answer is not acted on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    #[error("deny reason must be 1 to {max} bytes", max = MAX_REASON)]
    ReasonLength,
    #[error("deny reason {0:?} is not snake_case")]
    ReasonNotSnakeCase(String),
    #[error("deny message is {0} bytes, over the {max}-byte limit", max = MAX_MESSAGE)]
    MessageTooLong(usize),
    #[error("{0} tool names, over the {max} limit", max = MAX_TOOL_NAMES)]
    TooManyToolNames(usize),
    #[error("a tool name of {0} bytes, over the {max}-byte limit", max = MAX_TOOL_NAME)]
    ToolNameTooLong(usize),
    #[error("plugin {0} must be 1 to {max} printable characters", max = MAX_INFO_FIELD)]
    Info(&'static str),
    #[error("more than {max} headers and query parameters", max = MAX_PLAN_ENTRIES)]
    TooManyPlanEntries,
    #[error("{0:?} is not a valid header name")]
    HeaderName(String),
    #[error("header {0:?} is reserved to the proxy")]
    ReservedHeader(String),
    #[error("header {0:?} is set twice")]
    HeaderTwice(String),
    #[error("{0:?} is not a valid query parameter name")]
    QueryName(String),
    #[error("a value of {0} bytes, over the {max}-byte limit", max = MAX_PLAN_VALUE)]
    ValueTooLong(usize),
    #[error("a value holds a control or non-ASCII character")]
    ValueCharacter,
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("a refusal of {0} bytes, over the {max}-byte limit", max = MAX_REFUSAL)]
    RefusalTooLong(usize),
}

pub(crate) fn check_decision(decision: &Decision) -> Result<(), Malformed> {
    let Decision::Deny(denial) = decision else {
        return Ok(());
    };
    if denial.reason.is_empty() || denial.reason.len() > MAX_REASON {
        return Err(Malformed::ReasonLength);
    }
    if !denial
        .reason
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(Malformed::ReasonNotSnakeCase(denial.reason.clone()));
    }
    if denial.message.len() > MAX_MESSAGE {
        return Err(Malformed::MessageTooLong(denial.message.len()));
    }
    Ok(())
}

/// Checks a tool set; the names become a set.
pub(crate) fn check_tools(tools: RawToolSet) -> Result<ToolSet, Malformed> {
    let names = match tools {
        RawToolSet::All => return Ok(ToolSet::All),
        RawToolSet::Only(names) => names,
    };
    if names.len() > MAX_TOOL_NAMES {
        return Err(Malformed::TooManyToolNames(names.len()));
    }
    match names.iter().find(|n| n.len() > MAX_TOOL_NAME) {
        Some(name) => Err(Malformed::ToolNameTooLong(name.len())),
        None => Ok(ToolSet::Only(names.into_iter().collect())),
    }
}

pub(crate) fn check_info(info: &Description) -> Result<(), Malformed> {
    for (what, value) in [("name", &info.name), ("version", &info.version)] {
        if value.is_empty() || value.len() > MAX_INFO_FIELD || value.chars().any(char::is_control) {
            return Err(Malformed::Info(what));
        }
    }
    Ok(())
}

/// Checks a provider's answer: a plan's names and templates (header names come back
/// lower-case), or the length of its refusal.
pub(crate) fn check_plan(
    answer: Result<RawPlan, String>,
) -> Result<Result<InjectionPlan, String>, Malformed> {
    match answer {
        Ok(plan) => check_plan_entries(plan).map(Ok),
        Err(refusal) if refusal.len() <= MAX_REFUSAL => Ok(Err(refusal)),
        Err(refusal) => Err(Malformed::RefusalTooLong(refusal.len())),
    }
}

fn check_plan_entries(raw: RawPlan) -> Result<InjectionPlan, Malformed> {
    if raw.headers.len() + raw.query.len() > MAX_PLAN_ENTRIES {
        return Err(Malformed::TooManyPlanEntries);
    }
    let mut plan = InjectionPlan::default();
    for (name, value) in raw.headers {
        let name = name.to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_header_name_byte) {
            return Err(Malformed::HeaderName(name));
        }
        if RESERVED_HEADERS.contains(&name.as_str()) || name.starts_with("x-forwarded-") {
            return Err(Malformed::ReservedHeader(name));
        }
        if plan.headers.iter().any(|(existing, _)| *existing == name) {
            return Err(Malformed::HeaderTwice(name));
        }
        check_value(&value)?;
        plan.headers.push((name, Template::parse(&value)?));
    }
    for (name, value) in raw.query {
        if name.is_empty() || name.len() > MAX_PLAN_VALUE || name.chars().any(char::is_control) {
            return Err(Malformed::QueryName(name));
        }
        check_value(&value)?;
        plan.query.push((name, Template::parse(&value)?));
    }
    Ok(plan)
}

fn check_value(value: &str) -> Result<(), Malformed> {
    if value.len() > MAX_PLAN_VALUE {
        return Err(Malformed::ValueTooLong(value.len()));
    }
    // Visible ASCII, space and tab only: no CR or LF to start a second header, and no
    // bytes that HTTP libraries would reject at send time.
    if !value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err(Malformed::ValueCharacter);
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use portcullis_model::{Denial, DenyCode};

    use super::*;

    fn deny(reason: &str, message: &str) -> Decision {
        Decision::Deny(Denial {
            code: DenyCode::ToolNotPermitted,
            reason: reason.to_owned(),
            message: message.to_owned(),
        })
    }

    #[test]
    fn decisions() {
        assert_eq!(check_decision(&Decision::Allow), Ok(()));
        assert_eq!(check_decision(&deny("not_declared", "no")), Ok(()));
        assert_eq!(
            check_decision(&deny("", "no")),
            Err(Malformed::ReasonLength)
        );
        assert_eq!(
            check_decision(&deny("Not Declared", "no")),
            Err(Malformed::ReasonNotSnakeCase("Not Declared".into()))
        );
        assert_eq!(
            check_decision(&deny("x", &"m".repeat(MAX_MESSAGE + 1))),
            Err(Malformed::MessageTooLong(MAX_MESSAGE + 1))
        );
        assert_eq!(
            Malformed::MessageTooLong(4097).to_string(),
            "deny message is 4097 bytes, over the 4096-byte limit"
        );
    }

    #[test]
    fn plans() {
        let h = |n: &str, v: &str| RawPlan {
            headers: vec![(n.to_owned(), v.to_owned())],
            query: vec![],
        };
        let check = |plan| check_plan(Ok(plan)).map(|plan| plan.expect("a plan"));
        let plan = check(h("Authorization", "Bearer {secret}")).unwrap();
        assert_eq!(plan.headers[0].0, "authorization");
        assert_eq!(
            check(h("X-Api-Key", "{secret}\r\nX-Evil: 1")),
            Err(Malformed::ValueCharacter)
        );
        assert_eq!(
            check(h("Bad Name", "v")),
            Err(Malformed::HeaderName("bad name".into()))
        );
        assert_eq!(
            check(h("Host", "evil.example")),
            Err(Malformed::ReservedHeader("host".into()))
        );
        assert_eq!(
            check(h("X-Forwarded-For", "1.2.3.4")),
            Err(Malformed::ReservedHeader("x-forwarded-for".into()))
        );
        assert_eq!(
            check(h("Mcp-Session-Id", "x")),
            Err(Malformed::ReservedHeader("mcp-session-id".into()))
        );
        assert_eq!(
            check(h("X-Key", "{secrte}")),
            Err(Malformed::Template(TemplateError::UnknownPlaceholder {
                text: "{secrte}".into()
            }))
        );
        let twice = RawPlan {
            headers: vec![
                ("a".to_owned(), "1".to_owned()),
                ("A".to_owned(), "2".to_owned()),
            ],
            query: vec![],
        };
        assert_eq!(check(twice), Err(Malformed::HeaderTwice("a".into())));
        let query = RawPlan {
            headers: vec![],
            query: vec![("api_key".to_owned(), "{secret}".to_owned())],
        };
        assert_eq!(check(query).unwrap().query[0].0, "api_key");
    }

    #[test]
    fn refusals_are_bounded() {
        assert_eq!(check_plan(Err("no".into())), Ok(Err("no".into())));
        assert_eq!(
            check_plan(Err("r".repeat(MAX_REFUSAL + 1))),
            Err(Malformed::RefusalTooLong(MAX_REFUSAL + 1))
        );
        assert_eq!(
            Malformed::RefusalTooLong(4097).to_string(),
            "a refusal of 4097 bytes, over the 4096-byte limit"
        );
    }

    #[test]
    fn tool_sets() {
        assert_eq!(check_tools(RawToolSet::All), Ok(ToolSet::All));
        assert_eq!(
            check_tools(RawToolSet::Only(vec!["b".into(), "a".into(), "a".into()])),
            Ok(ToolSet::Only(["a".to_owned(), "b".to_owned()].into()))
        );
        assert_eq!(
            check_tools(RawToolSet::Only(vec!["n".repeat(MAX_TOOL_NAME + 1)])),
            Err(Malformed::ToolNameTooLong(MAX_TOOL_NAME + 1))
        );
    }
}
