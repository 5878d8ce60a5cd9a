//! How records that have no column of their own are written as JSON text.
//!
//! The runtime's model types serialize for plugins and the API but do not deserialize;
//! the store owns its on-disk form through these mirrors, so a change to the runtime's
//! serde attributes can never make stored rows unreadable. A database error becomes a
//! [`StoreError`] through [`backend`]; [`storable`] and [`audit_text`] say what PostgreSQL
//! text can hold (no NUL).

use std::borrow::Cow;
use std::sync::Arc;

use portcullis_model::{ConnectorStatus, FieldKind, ServerRule, Stamp, ToolRule};
use serde::{Deserialize, Serialize};

use super::{ConnectorFieldSpec, StoreError};

#[derive(Serialize, Deserialize)]
struct FieldRow {
    name: String,
    multiple: bool,
    rules: Vec<RuleRow>,
}

#[derive(Serialize, Deserialize)]
struct RuleRow {
    url: String,
    tools: Option<ToolsRow>,
}

#[derive(Serialize, Deserialize)]
struct ToolsRow {
    required: Option<Vec<String>>,
    read_only: Option<bool>,
    destructive: Option<bool>,
    idempotent: Option<bool>,
    open_world: Option<bool>,
}

#[derive(Serialize, Deserialize)]
struct StampRow {
    name: String,
    version: String,
    sha256: String,
}

pub fn fields_to_json(fields: &[ConnectorFieldSpec]) -> String {
    let rows: Vec<FieldRow> = fields
        .iter()
        .map(|field| FieldRow {
            name: field.name.clone(),
            multiple: field.kind == FieldKind::Multiple,
            rules: field
                .rules
                .iter()
                .map(|rule| RuleRow {
                    url: rule.url.clone(),
                    tools: rule.tools.as_ref().map(|t| ToolsRow {
                        required: t.required.clone(),
                        read_only: t.read_only,
                        destructive: t.destructive,
                        idempotent: t.idempotent,
                        open_world: t.open_world,
                    }),
                })
                .collect(),
        })
        .collect();
    serde_json::to_string(&rows).expect("field rows serialize")
}

pub fn fields_from_json(text: &str) -> Result<Vec<ConnectorFieldSpec>, StoreError> {
    let rows: Vec<FieldRow> = decode(text, "actor connector fields")?;
    Ok(rows
        .into_iter()
        .map(|row| ConnectorFieldSpec {
            name: row.name,
            kind: if row.multiple {
                FieldKind::Multiple
            } else {
                FieldKind::Single
            },
            rules: row
                .rules
                .into_iter()
                .map(|rule| ServerRule {
                    url: rule.url,
                    tools: rule.tools.map(|t| ToolRule {
                        required: t.required,
                        read_only: t.read_only,
                        destructive: t.destructive,
                        idempotent: t.idempotent,
                        open_world: t.open_world,
                    }),
                })
                .collect(),
        })
        .collect())
}

pub fn stamps_to_json(stamps: &[Stamp]) -> String {
    let rows: Vec<StampRow> = stamps
        .iter()
        .map(|s| StampRow {
            name: s.name.to_string(),
            version: s.version.to_string(),
            sha256: s.sha256.to_string(),
        })
        .collect();
    serde_json::to_string(&rows).expect("stamp rows serialize")
}

pub fn stamps_from_json(text: &str) -> Result<Vec<Stamp>, StoreError> {
    let rows: Vec<StampRow> = decode(text, "audit plugin stamps")?;
    Ok(rows
        .into_iter()
        .map(|row| Stamp {
            name: Arc::from(row.name),
            version: Arc::from(row.version),
            sha256: Arc::from(row.sha256),
        })
        .collect())
}

pub fn status_to_str(status: ConnectorStatus) -> &'static str {
    match status {
        ConnectorStatus::Authorized => "authorized",
        ConnectorStatus::NeedsReauthorization => "needs_reauthorization",
        ConnectorStatus::PendingAuthorization => "pending_authorization",
    }
}

pub fn status_from_str(text: &str) -> Result<ConnectorStatus, StoreError> {
    match text {
        "authorized" => Ok(ConnectorStatus::Authorized),
        "needs_reauthorization" => Ok(ConnectorStatus::NeedsReauthorization),
        "pending_authorization" => Ok(ConnectorStatus::PendingAuthorization),
        other => Err(corrupt("connector status", other)),
    }
}

pub fn decode<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, &e.to_string()))
}

pub fn corrupt(what: &str, detail: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} is unreadable: {detail}"))
}

/// A database error, as the store answers it.
pub fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Whether `key` can be stored at all: PostgreSQL text holds no NUL.
pub fn storable(key: &str) -> bool {
    !key.contains('\0')
}

/// Audit text as PostgreSQL can keep it.
pub fn audit_text(text: &str) -> Cow<'_, str> {
    if storable(text) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    }
}
