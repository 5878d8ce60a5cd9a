//! Credential templates in injection plans.
//!
//! A provider plugin answers with header and query values such as `Bearer {secret}`; the
//! host replaces the placeholders after the call, so the plugin never sees the secret.
//! Parsing happens when the plan is checked: any `{` that does not open a known
//! placeholder makes the whole answer malformed, so a typo cannot send a literal
//! `{secrte}` upstream. Rendering is a pure function; nothing here keeps a secret.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Credential,
}

/// A header or query value with its credential placeholders located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The placeholders a template may hold. Both name the connector's one credential:
/// `{secret}` for an API key or token, `{access_token}` for an OAuth access token.
pub const PLACEHOLDERS: [&str; 2] = ["{secret}", "{access_token}"];

/// Why a value is not a template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder in {text:?}: only {PLACEHOLDERS:?} are allowed")]
    UnknownPlaceholder { text: String },
    #[error("unbalanced `}}` in {text:?}")]
    UnbalancedBrace { text: String },
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open..];
            let placeholder = PLACEHOLDERS
                .iter()
                .find(|p| after.starts_with(**p))
                .ok_or_else(|| TemplateError::UnknownPlaceholder {
                    text: text.to_owned(),
                })?;
            parts.push(Part::Credential);
            rest = &after[placeholder.len()..];
        }
        if rest.contains('}') {
            return Err(TemplateError::UnbalancedBrace {
                text: text.to_owned(),
            });
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Whether the value carries the credential.
    pub fn uses_credential(&self) -> bool {
        self.parts.contains(&Part::Credential)
    }

    /// The value with `credential` in place of every placeholder; `None` when the template
    /// needs a credential and there is none.
    pub fn render(&self, credential: Option<&str>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Credential => out.push_str(credential?),
            }
        }
        Some(out)
    }
}

/// Shows the template with its placeholders, never a credential.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Credential => f.write_str("{secret}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        let t = Template::parse("Bearer {secret}").unwrap();
        assert!(t.uses_credential());
        assert_eq!(t.render(Some("s3cr3t")).unwrap(), "Bearer s3cr3t");
        assert_eq!(
            Template::parse("{access_token}")
                .unwrap()
                .render(Some("tok"))
                .unwrap(),
            "tok"
        );
    }

    #[test]
    fn literal_needs_no_credential() {
        let t = Template::parse("repos,issues").unwrap();
        assert!(!t.uses_credential());
        assert_eq!(t.render(None).unwrap(), "repos,issues");
    }

    #[test]
    fn missing_credential_renders_nothing() {
        assert_eq!(
            Template::parse("Bearer {secret}").unwrap().render(None),
            None
        );
    }

    #[test]
    fn unknown_or_unbalanced_braces_are_refused() {
        let unknown = |text: &str| TemplateError::UnknownPlaceholder { text: text.into() };
        let unbalanced = |text: &str| TemplateError::UnbalancedBrace { text: text.into() };
        assert_eq!(
            Template::parse("Bearer {secrte}"),
            Err(unknown("Bearer {secrte}"))
        );
        assert_eq!(Template::parse("Bearer {"), Err(unknown("Bearer {")));
        assert_eq!(Template::parse("Bearer }"), Err(unbalanced("Bearer }")));
        assert_eq!(Template::parse("{secret}}"), Err(unbalanced("{secret}}")));
        assert_eq!(
            unknown("Bearer {").to_string(),
            r#"unknown placeholder in "Bearer {": only ["{secret}", "{access_token}"] are allowed"#
        );
        assert_eq!(
            unbalanced("Bearer }").to_string(),
            r#"unbalanced `}` in "Bearer }""#
        );
    }

    #[test]
    fn display_never_shows_a_credential() {
        let t = Template::parse("Sentry-Bearer {access_token}").unwrap();
        assert_eq!(t.to_string(), "Sentry-Bearer {secret}");
    }
}
