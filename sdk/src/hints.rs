//! Effective MCP tool hints.
//!
//! An annotation the upstream left out takes the MCP default: `readOnlyHint` false,
//! `destructiveHint` true, `idempotentHint` false, `openWorldHint` true. MCP defines the
//! destructive and idempotent hints as meaningful only when `readOnlyHint` is false, so a
//! read-only tool counts as non-destructive and idempotent (the decision `design.md`
//! adopts; without it the documented "read-only Slack monitor" rule would exclude every
//! tool that sets only `readOnlyHint: true`).

use crate::policy::{ToolHints, ToolRule};

/// The four hints with the defaults and the read-only rule applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveHints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

/// The hints a policy evaluates for a tool annotated with `hints`.
pub fn effective(hints: &ToolHints) -> EffectiveHints {
    let read_only = hints.read_only.unwrap_or(false);
    EffectiveHints {
        read_only,
        destructive: if read_only {
            false
        } else {
            hints.destructive.unwrap_or(true)
        },
        idempotent: if read_only {
            true
        } else {
            hints.idempotent.unwrap_or(false)
        },
        open_world: hints.open_world.unwrap_or(true),
    }
}

/// Whether a tool with `hints` passes every hint `rule` sets explicitly; a hint the rule
/// omits imposes no restriction.
pub fn passes(rule: &ToolRule, hints: &ToolHints) -> bool {
    let eff = effective(hints);
    let wanted = [
        (rule.read_only, eff.read_only),
        (rule.destructive, eff.destructive),
        (rule.idempotent, eff.idempotent),
        (rule.open_world, eff.open_world),
    ];
    wanted
        .iter()
        .all(|(want, have)| want.is_none_or(|want| want == *have))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(
        read_only: Option<bool>,
        destructive: Option<bool>,
        idempotent: Option<bool>,
        open_world: Option<bool>,
    ) -> ToolHints {
        ToolHints {
            read_only,
            destructive,
            idempotent,
            open_world,
        }
    }

    fn rule() -> ToolRule {
        ToolRule {
            required: None,
            read_only: None,
            destructive: None,
            idempotent: None,
            open_world: None,
        }
    }

    #[test]
    fn unannotated_tool_takes_mcp_defaults() {
        assert_eq!(
            effective(&hints(None, None, None, None)),
            EffectiveHints {
                read_only: false,
                destructive: true,
                idempotent: false,
                open_world: true
            }
        );
    }

    #[test]
    fn read_only_tool_is_non_destructive_and_idempotent() {
        let eff = effective(&hints(Some(true), Some(true), Some(false), None));
        assert!(eff.read_only && !eff.destructive && eff.idempotent && eff.open_world);
    }

    #[test]
    fn explicit_hints_are_kept_for_mutating_tools() {
        let eff = effective(&hints(Some(false), Some(false), Some(true), Some(false)));
        assert!(!eff.read_only && !eff.destructive && eff.idempotent && !eff.open_world);
    }

    #[test]
    fn omitted_rule_hints_restrict_nothing() {
        assert!(passes(&rule(), &hints(None, None, None, None)));
    }

    #[test]
    fn each_rule_hint_is_checked_against_the_effective_value() {
        let unannotated = hints(None, None, None, None);
        let read_only = hints(Some(true), None, None, None);
        let r = |f: fn(&mut ToolRule)| {
            let mut r = rule();
            f(&mut r);
            r
        };
        assert!(!passes(&r(|r| r.read_only = Some(true)), &unannotated));
        assert!(passes(&r(|r| r.read_only = Some(false)), &unannotated));
        assert!(passes(&r(|r| r.destructive = Some(true)), &unannotated));
        assert!(!passes(&r(|r| r.destructive = Some(true)), &read_only));
        assert!(passes(&r(|r| r.idempotent = Some(false)), &unannotated));
        assert!(passes(&r(|r| r.idempotent = Some(true)), &read_only));
        assert!(passes(&r(|r| r.open_world = Some(true)), &unannotated));
        assert!(!passes(&r(|r| r.open_world = Some(false)), &unannotated));
    }
}
