//! `connector-access`: may this run use this connector at all?
//!
//! Allows only when the connector belongs to the run's user, is authorized, is provided
//! by the run's input (a string or array field with `resourceType: "mcpConnector"`), and
//! matches at least one `mcpServers` rule of a field that carries it (specification
//! section 4.4, steps 1 to 7). Each failure has its own reason for the audit log; the
//! proxy answers all of them with the same 403, so a run cannot probe other connectors.
//! It decides nothing else: `request` and `permitted_tools` are the SDK's (allow).

use portcullis_sdk::policy::*;
use portcullis_sdk::rules;

pub struct ConnectorAccess;

impl Policy for ConnectorAccess {
    fn describe() -> PolicyInfo {
        info("connector-access", env!("CARGO_PKG_VERSION"))
    }

    fn access(ctx: DecisionContext) -> Decision {
        let unavailable =
            |reason: &str, message: String| deny(DenyCode::ConnectorUnavailable, reason, message);
        let connector = &ctx.connector;
        if connector.owner != ctx.run.user {
            return unavailable(
                "not_owner",
                format!(
                    "connector {} does not belong to the run's user",
                    connector.id
                ),
            );
        }
        if connector.status != ConnectorStatus::Authorized {
            return unavailable(
                "not_authorized",
                format!("connector {} needs re-authorization", connector.id),
            );
        }
        if rules::carrying_fields(&ctx).next().is_none() {
            return unavailable(
                "not_provided",
                format!("connector {} is not in the run's input", connector.id),
            );
        }
        if rules::matched_rules(&ctx).next().is_none() {
            return unavailable(
                "no_matching_rule",
                format!(
                    "connector {} matches no mcpServers rule of its input field",
                    connector.id
                ),
            );
        }
        Decision::Allow
    }
}

portcullis_sdk::export_policy!(ConnectorAccess);

#[cfg(test)]
mod tests;
