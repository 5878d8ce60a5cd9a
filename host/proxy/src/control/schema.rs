//! Validation of an actor input schema's `mcpConnector` properties (spec section 3.3).
//!
//! This follows the Apify validator: a connector property has `title`, `description`,
//! `type` (`string` for one connector, `array` for several), `resourceType` and a
//! non-empty `mcpServers` list; the other keys it may carry depend on its type, and any
//! other key is refused. Each `mcpServers` entry has a `url` pattern and an optional
//! `tools` object (`required` patterns and four hint booleans), neither with extra keys.
//! Properties of other kinds are left to the platform.

use portcullis_model::{FieldKind, ServerRule, ToolRule};
use serde_json::{Map, Value};

use crate::store::ConnectorFieldSpec;

/// An invalid schema, naming the property when one is at fault.
#[derive(Debug, PartialEq, Eq)]
pub struct SchemaError {
    pub property: Option<String>,
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.property {
            Some(name) => write!(f, "input_schema property `{name}`: {}", self.message),
            None => write!(f, "input_schema: {}", self.message),
        }
    }
}

const COMMON_KEYS: &[&str] = &[
    "title",
    "description",
    "type",
    "resourceType",
    "mcpServers",
    "editor",
    "nullable",
    "default",
    "prefill",
    "example",
    "sectionCaption",
    "sectionDescription",
    "errorMessage",
];
const SINGLE_KEYS: &[&str] = &["pattern", "minLength", "maxLength"];
const MULTIPLE_KEYS: &[&str] = &["minItems", "maxItems", "uniqueItems"];
const HINTS: &[&str] = &["readOnly", "destructive", "idempotent", "openWorld"];

/// The `mcpConnector` properties of `schema`, validated.
pub fn connector_fields(schema: &Value) -> Result<Vec<ConnectorFieldSpec>, SchemaError> {
    let top = |message: &str| SchemaError {
        property: None,
        message: message.to_owned(),
    };
    let schema = schema
        .as_object()
        .ok_or_else(|| top("must be a JSON object"))?;
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| top("must have a `properties` object"))?;
    properties
        .iter()
        .filter(|(_, prop)| {
            prop.get("resourceType").and_then(Value::as_str) == Some("mcpConnector")
        })
        .map(|(name, prop)| {
            connector_field(name, prop).map_err(|message| SchemaError {
                property: Some(name.clone()),
                message,
            })
        })
        .collect()
}

fn connector_field(name: &str, prop: &Value) -> Result<ConnectorFieldSpec, String> {
    let prop = prop.as_object().ok_or("must be a JSON object")?;
    for key in ["title", "description"] {
        match prop.get(key) {
            Some(Value::String(_)) => {}
            Some(_) => return Err(format!("`{key}` must be a string")),
            None => return Err(format!("`{key}` is required")),
        }
    }
    let kind = match prop.get("type").and_then(Value::as_str) {
        Some("string") => FieldKind::Single,
        Some("array") => FieldKind::Multiple,
        _ => {
            return Err(
                "`type` must be \"string\" (one connector) or \"array\" (several connectors)"
                    .to_owned(),
            );
        }
    };
    let specific = match kind {
        FieldKind::Single => SINGLE_KEYS,
        FieldKind::Multiple => MULTIPLE_KEYS,
    };
    if let Some(key) = prop
        .keys()
        .find(|k| !COMMON_KEYS.contains(&k.as_str()) && !specific.contains(&k.as_str()))
    {
        return Err(format!(
            "`{key}` is not allowed on a connector property of type {}",
            type_name(kind)
        ));
    }
    check_optional_keys(prop, kind)?;
    let servers = match prop.get("mcpServers") {
        Some(Value::Array(servers)) if !servers.is_empty() => servers,
        Some(Value::Array(_)) => {
            return Err("`mcpServers` must have at least one entry; use [{\"url\": \"*\"}] to accept any server".to_owned());
        }
        Some(_) => return Err("`mcpServers` must be an array".to_owned()),
        None => return Err("`mcpServers` is required for a connector property".to_owned()),
    };
    let rules = servers
        .iter()
        .enumerate()
        .map(|(i, entry)| server_rule(entry).map_err(|e| format!("`mcpServers[{i}]{e}")))
        .collect::<Result<_, _>>()?;
    Ok(ConnectorFieldSpec {
        name: name.to_owned(),
        kind,
        rules,
    })
}

fn type_name(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Single => "string",
        FieldKind::Multiple => "array",
    }
}

fn check_optional_keys(prop: &Map<String, Value>, kind: FieldKind) -> Result<(), String> {
    let editors: &[&str] = match kind {
        FieldKind::Single => &["resourcePicker", "textfield", "hidden"],
        FieldKind::Multiple => &["resourcePicker", "hidden"],
    };
    if let Some(editor) = prop.get("editor")
        && !editor.as_str().is_some_and(|e| editors.contains(&e))
    {
        return Err(format!("`editor` must be one of {}", editors.join(", ")));
    }
    let value_ok = |value: &Value| match kind {
        FieldKind::Single => value.is_string(),
        FieldKind::Multiple => value
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string)),
    };
    let expected = match kind {
        FieldKind::Single => "a connector id string",
        FieldKind::Multiple => "an array of connector id strings",
    };
    if let Some(default) = prop.get("default")
        && !(default.is_null() || value_ok(default))
    {
        return Err(format!("`default` must be {expected} or null"));
    }
    for key in ["prefill", "example"] {
        if prop.get(key).is_some_and(|v| !value_ok(v)) {
            return Err(format!("`{key}` must be {expected}"));
        }
    }
    for key in ["nullable", "uniqueItems"] {
        if prop.get(key).is_some_and(|v| !v.is_boolean()) {
            return Err(format!("`{key}` must be a boolean"));
        }
    }
    for key in ["sectionCaption", "sectionDescription", "pattern"] {
        if prop.get(key).is_some_and(|v| !v.is_string()) {
            return Err(format!("`{key}` must be a string"));
        }
    }
    if prop.get("errorMessage").is_some_and(|v| !v.is_object()) {
        return Err("`errorMessage` must be an object".to_owned());
    }
    for key in ["minLength", "maxLength", "minItems", "maxItems"] {
        if prop.get(key).is_some_and(|v| v.as_u64().is_none()) {
            return Err(format!("`{key}` must be a non-negative integer"));
        }
    }
    Ok(())
}

/// One `mcpServers` entry; errors start with the path inside the entry.
fn server_rule(entry: &Value) -> Result<ServerRule, String> {
    let entry = entry.as_object().ok_or("` must be an object")?;
    if let Some(key) = entry
        .keys()
        .find(|k| !["url", "tools"].contains(&k.as_str()))
    {
        return Err(format!(
            "` has the unknown key `{key}` (allowed: url, tools)"
        ));
    }
    let url = match entry.get("url") {
        Some(Value::String(url)) if !url.is_empty() => url.clone(),
        Some(Value::String(_)) => return Err(".url` must not be empty".to_owned()),
        Some(_) => return Err(".url` must be a string".to_owned()),
        None => return Err(".url` is required".to_owned()),
    };
    let tools = entry.get("tools").map(tool_rule).transpose()?;
    Ok(ServerRule { url, tools })
}

fn tool_rule(tools: &Value) -> Result<ToolRule, String> {
    let tools = tools.as_object().ok_or(".tools` must be an object")?;
    if let Some(key) = tools
        .keys()
        .find(|k| k.as_str() != "required" && !HINTS.contains(&k.as_str()))
    {
        return Err(format!(
            ".tools` has the unknown key `{key}` (allowed: required, {})",
            HINTS.join(", ")
        ));
    }
    let required = tools.get("required").map(required_patterns).transpose()?;
    let hint = |key: &str| -> Result<Option<bool>, String> {
        match tools.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!(".tools.{key}` must be a boolean")),
        }
    };
    Ok(ToolRule {
        required,
        read_only: hint("readOnly")?,
        destructive: hint("destructive")?,
        idempotent: hint("idempotent")?,
        open_world: hint("openWorld")?,
    })
}

fn required_patterns(value: &Value) -> Result<Vec<String>, String> {
    let items = value
        .as_array()
        .ok_or(".tools.required` must be an array of tool-name patterns")?;
    if items.is_empty() {
        return Err(
            ".tools.required` must list at least one pattern; omit it to require nothing"
                .to_owned(),
        );
    }
    let mut patterns: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let pattern = match item {
            Value::String(p) if !p.is_empty() => p,
            Value::String(_) => return Err(".tools.required` has an empty pattern".to_owned()),
            _ => return Err(".tools.required` must hold only strings".to_owned()),
        };
        if patterns.contains(pattern) {
            return Err(format!(".tools.required` lists `{pattern}` twice"));
        }
        patterns.push(pattern.clone());
    }
    Ok(patterns)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(prop: Value) -> Value {
        json!({"title": "t", "type": "object", "schemaVersion": 1, "properties": {"slack": prop, "q": {"type": "string", "title": "q", "description": "d"}}})
    }

    fn valid() -> Value {
        json!({
            "title": "Slack", "description": "d", "type": "string",
            "resourceType": "mcpConnector", "editor": "textfield",
            "mcpServers": [{"url": "https://mcp.slack.com/mcp",
                "tools": {"required": ["list_*"], "readOnly": true}}]
        })
    }

    fn error(prop: Value) -> String {
        connector_fields(&schema(prop)).unwrap_err().to_string()
    }

    #[test]
    fn accepts_the_documented_shapes() {
        let fields = connector_fields(&schema(valid())).unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].kind, FieldKind::Single);
        let tools = fields[0].rules[0].tools.as_ref().unwrap();
        assert_eq!(tools.required.as_deref(), Some(&["list_*".to_owned()][..]));
        assert_eq!(tools.read_only, Some(true));
        assert_eq!(tools.destructive, None);
        let multi = json!({"title": "t", "description": "d", "type": "array",
            "resourceType": "mcpConnector", "mcpServers": [{"url": "*"}], "minItems": 1});
        let fields = connector_fields(&schema(multi)).unwrap();
        assert_eq!(fields[0].kind, FieldKind::Multiple);
        assert_eq!(fields[0].rules[0].tools, None);
    }

    #[test]
    fn refuses_each_invalid_part_naming_the_property() {
        let with = |patch: Value| {
            let mut prop = valid();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    prop.as_object_mut().unwrap().remove(k);
                } else {
                    prop[k] = v.clone();
                }
            }
            error(prop)
        };
        assert!(with(json!({"type": "integer"})).contains("`type` must be"));
        assert!(with(json!({"mcpServers": null})).contains("`mcpServers` is required"));
        assert!(with(json!({"mcpServers": []})).contains("at least one entry"));
        assert!(with(json!({"title": null})).contains("`title` is required"));
        assert!(with(json!({"minItems": 1})).contains("`minItems` is not allowed"));
        assert!(with(json!({"resourcePermissions": ["x"]})).contains("not allowed"));
        assert!(
            with(json!({"mcpServers": [{"tools": {}}]})).contains("mcpServers[0].url` is required")
        );
        assert!(with(json!({"mcpServers": [{"url": ""}]})).contains("must not be empty"));
        assert!(with(json!({"mcpServers": [{"url": "*", "x": 1}]})).contains("unknown key `x`"));
        assert!(
            with(json!({"mcpServers": [{"url": "*", "tools": {"required": []}}]}))
                .contains("at least one pattern")
        );
        assert!(
            with(json!({"mcpServers": [{"url": "*", "tools": {"required": ["a", "a"]}}]}))
                .contains("twice")
        );
        assert!(
            with(json!({"mcpServers": [{"url": "*", "tools": {"required": [""]}}]}))
                .contains("empty pattern")
        );
        assert!(
            with(json!({"mcpServers": [{"url": "*", "tools": {"readOnly": "yes"}}]}))
                .contains("readOnly` must be a boolean")
        );
        assert!(
            with(json!({"mcpServers": [{"url": "*", "tools": {"writes": true}}]}))
                .contains("unknown key `writes`")
        );
        assert!(with(json!({"editor": "select"})).contains("`editor`"));
        assert!(with(json!({"default": 3})).contains("`default`"));
        assert!(with(json!({"type": "integer"})).starts_with("input_schema property `slack`: "));
    }

    #[test]
    fn schema_without_properties_is_refused() {
        let err = connector_fields(&json!({"title": "x"})).unwrap_err();
        assert_eq!(err.property, None);
        assert!(connector_fields(&json!([1])).is_err());
    }
}
