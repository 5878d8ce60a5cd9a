//! The eligibility and permitted-set algorithm of the specification (section 4.4).
//!
//! * Layer 1 is the discovery snapshot intersected with the owner's allowlist; a tool
//!   missing from the snapshot is never in it.
//! * A rule *considers* the layer-1 tools that pass its hints; it *matches* the connector
//!   when its URL pattern matches the normalized connector URL and every `required`
//!   pattern names at least one considered tool.
//! * A matched rule's *ceiling* is the considered tools named by some `required` pattern
//!   (all considered tools when `required` is absent); the permitted set is the union of
//!   the ceilings of every matched rule of every input field that carries the connector.

use std::collections::BTreeSet;

use crate::policy::{Connector, ConnectorField, DecisionContext, ServerRule, Tool};
use crate::{glob, hints, url};

/// Layer 1: the snapshot tools the owner's allowlist permits.
pub fn layer1(connector: &Connector) -> impl Iterator<Item = &Tool> {
    connector.tools.iter().filter(|tool| {
        connector
            .allowed_tools
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&tool.name))
    })
}

/// Whether `name` is in the connector's discovery snapshot.
pub fn in_snapshot(connector: &Connector, name: &str) -> bool {
    connector.tools.iter().any(|tool| tool.name == name)
}

/// Why `tool` is outside layer 1, as a deny reason and a message, or `None` when it is in
/// it. Every plugin that denies a call for this cause gives the same reason, whichever of
/// them a chain asks first: `unknown_tool` (not in the snapshot) before
/// `not_allowed_by_connector` (in the snapshot, not in the owner's allowlist).
pub fn outside_layer1(connector: &Connector, tool: &str) -> Option<(&'static str, String)> {
    if !in_snapshot(connector, tool) {
        return Some((
            "unknown_tool",
            format!("tool {tool} is not in the connector's discovery snapshot"),
        ));
    }
    if !layer1(connector).any(|t| t.name == tool) {
        return Some((
            "not_allowed_by_connector",
            format!("the connector's owner does not allow tool {tool}"),
        ));
    }
    None
}

/// The layer-1 tools that pass the hints of `rule`.
pub fn considered<'a>(
    rule: &'a ServerRule,
    connector: &'a Connector,
) -> impl Iterator<Item = &'a Tool> {
    layer1(connector).filter(move |tool| {
        rule.tools
            .as_ref()
            .is_none_or(|tools| hints::passes(tools, &tool.hints))
    })
}

/// The `required` patterns of `rule`, or `None` when it places no restriction on names
/// (absent, or exactly `["*"]`).
fn required_patterns(rule: &ServerRule) -> Option<&[String]> {
    let required = rule.tools.as_ref()?.required.as_deref()?;
    (required != ["*"]).then_some(required)
}

/// Whether `rule` matches the connector: URL pattern and `required` satisfaction.
pub fn rule_matches(rule: &ServerRule, connector: &Connector) -> bool {
    if !url::matches(&rule.url, &connector.server_url) {
        return false;
    }
    match required_patterns(rule) {
        None => true,
        Some(patterns) => patterns.iter().all(|pattern| {
            considered(rule, connector).any(|tool| glob::matches(pattern, &tool.name))
        }),
    }
}

/// The tools a matched `rule` exposes.
pub fn ceiling<'a>(
    rule: &'a ServerRule,
    connector: &'a Connector,
) -> impl Iterator<Item = &'a Tool> {
    considered(rule, connector).filter(move |tool| named_by(rule, &tool.name))
}

/// Whether a `required` pattern of `rule` names `tool` (any name, when it has none).
fn named_by(rule: &ServerRule, tool: &str) -> bool {
    required_patterns(rule).is_none_or(|patterns| patterns.iter().any(|p| glob::matches(p, tool)))
}

/// The input fields of the run that carry the connector.
pub fn carrying_fields(ctx: &DecisionContext) -> impl Iterator<Item = &ConnectorField> {
    ctx.run
        .fields
        .iter()
        .filter(|field| field.provided.contains(&ctx.connector.id))
}

/// Every rule, of every carrying field, that matches the connector.
pub fn matched_rules(ctx: &DecisionContext) -> impl Iterator<Item = &ServerRule> {
    carrying_fields(ctx)
        .flat_map(|field| field.rules.iter())
        .filter(|rule| rule_matches(rule, &ctx.connector))
}

/// Whether `tool` is in [`permitted`], without building the set: the check of every
/// `tools/call`, so it looks at the one tool before it evaluates any rule.
pub fn permits(ctx: &DecisionContext, tool: &str) -> bool {
    let Some(candidate) = layer1(&ctx.connector).find(|t| t.name == tool) else {
        return false;
    };
    carrying_fields(ctx)
        .flat_map(|field| field.rules.iter())
        .filter(|rule| {
            named_by(rule, tool)
                && rule
                    .tools
                    .as_ref()
                    .is_none_or(|hints| hints::passes(hints, &candidate.hints))
        })
        .any(|rule| rule_matches(rule, &ctx.connector))
}

/// The permitted set of layer 2: the union of the ceilings of every matched rule.
pub fn permitted(ctx: &DecisionContext) -> BTreeSet<String> {
    matched_rules(ctx)
        .flat_map(|rule| ceiling(rule, &ctx.connector))
        .map(|tool| tool.name.clone())
        .collect()
}
