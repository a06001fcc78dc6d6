//! Config errors that name the field, and the first phase of parsing (JSON → raw serde types).
//!
//! Every filter parses its config in two phases: serde into raw types with
//! `deny_unknown_fields` (a typo must never silently disable a check), then `TryFrom` into a
//! validated, precompiled form. Both phases report a [`ConfigError`] whose `path` is the field,
//! written the way a user reads their JSON: `consumers[2].keys[0].sha256`.

use core::fmt;

/// A config that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Field path, `a.b[2].c`; empty for the whole document.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error seen from a parent: `rules[1]` + `match.path` → `rules[1].match.path`.
    #[must_use]
    pub fn under(self, parent: &str) -> Self {
        let path = match (parent.is_empty(), self.path.is_empty()) {
            (true, _) => self.path,
            (false, true) => parent.to_string(),
            (false, false) if self.path.starts_with('[') => format!("{parent}{}", self.path),
            (false, false) => format!("{parent}.{}", self.path),
        };
        Self { path, ..self }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Builds field paths while validating: `Field::root().key("rules").index(2).key("match")`.
#[derive(Debug, Clone, Default)]
pub struct Field(String);

impl Field {
    pub fn root() -> Self {
        Self(String::new())
    }
    #[must_use]
    pub fn key(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_string())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.0.clone(), message)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Largest config document accepted, so a runaway xDS push cannot exhaust the VM's memory.
pub const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// Phase one: JSON bytes → raw serde types, with the failing field's path in the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::new(
            "",
            format!(
                "config is {} bytes; the limit is {MAX_CONFIG_BYTES}",
                bytes.len()
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(
            "",
            "config is empty; expected a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = display_path(e.path());
        // serde_json appends " at line L column C": useful for syntax errors, noise otherwise.
        ConfigError::new(path, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| ConfigError::new("", format!("trailing data after the config: {e}")))?;
    Ok(value)
}

fn display_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// Checks a header name the config wants to read or write: lowercase token characters only,
/// never a pseudo-header (those are Envoy's, not the user's).
pub fn check_header_name(field: &Field, name: &str) -> Result<String, ConfigError> {
    let lower = name.to_ascii_lowercase();
    if lower.is_empty() {
        return Err(field.error("header name is empty"));
    }
    if lower.len() > 256 {
        return Err(field.error("header name is longer than 256 bytes"));
    }
    if lower.starts_with(':') {
        return Err(field.error(format!("\"{name}\" is a pseudo-header")));
    }
    if !lower.bytes().all(is_token_byte) {
        return Err(field.error(format!("\"{name}\" is not a valid header name")));
    }
    Ok(lower)
}

/// Longest id, plan, group or other label a config may name.
pub const MAX_LABEL_LENGTH: usize = 256;

/// Ids, plans and groups travel in headers and filter state: a conservative character set
/// (letters, digits and `. _ - ~ : @ + /`), 1 to [`MAX_LABEL_LENGTH`] bytes.
pub fn check_label(value: &str, field: &Field) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_LABEL_LENGTH
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-~:@+/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(field.error(format!(
            "\"{value}\" must be 1-256 characters of letters, digits and . _ - ~ : @ + /"
        )))
    }
}

/// An OAuth2 scope token (RFC 6749 §3.3): printable ASCII except space, `"` and `\`,
/// 1 to 256 bytes.
pub fn check_scope(value: &str, field: &Field) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_LABEL_LENGTH
        && value
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(field.error(format!("\"{value}\" is not a valid OAuth2 scope token")))
    }
}

/// A realm goes inside a quoted-string of `WWW-Authenticate`: printable ASCII without quotes
/// or backslashes, 1 to 256 bytes, so it never needs escaping.
pub fn check_realm(value: &str, field: &Field) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_LABEL_LENGTH
        && value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(field.error("must be 1-256 printable ASCII characters without quotes or backslashes"))
    }
}

/// RFC 9110 `tchar`.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        rules: Vec<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    #[test]
    fn parse_errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"rules":[{"name":"a"},{"nmae":"b"}]}"#,
                "rules[1].nmae: unknown field `nmae`, expected `name`",
            ),
            (
                r#"{"rules":[{"name":7}]}"#,
                "rules[0].name: invalid type: integer `7`",
            ),
            (r#"{"rules":[]} x"#, "trailing data"),
            ("  ", "config is empty"),
            (r#"{"rules":"#, "EOF while parsing"),
        ];
        for (input, want) in cases {
            let err = parse_json::<Outer>(input.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{input}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn error_paths_compose() {
        let e = ConfigError::new("match.path", "bad").under("rules[1]");
        assert_eq!(e.to_string(), "rules[1].match.path: bad");
        let e = ConfigError::new("[2]", "bad").under("keys");
        assert_eq!(e.to_string(), "keys[2]: bad");
        let f = Field::root().key("consumers").index(3).key("id");
        assert_eq!(f.error("empty").to_string(), "consumers[3].id: empty");
    }

    #[test]
    fn labels_are_checked() {
        let f = Field::root().key("id");
        for good in ["alice", "team.a/b_c-d~e:f@g+h", &"x".repeat(256)] {
            assert!(check_label(good, &f).is_ok(), "{good}");
        }
        for bad in ["", "a b", "é", "a\"b", &"x".repeat(257)] {
            assert!(check_label(bad, &f).is_err(), "{bad}");
        }
    }

    #[test]
    fn realms_are_checked() {
        let f = Field::root().key("realm");
        assert!(check_realm("my api", &f).is_ok());
        for bad in ["", "a\"b", "a\\b", "é", "a\nb"] {
            assert_eq!(
                check_realm(bad, &f).unwrap_err().to_string(),
                "realm: must be 1-256 printable ASCII characters without quotes or backslashes",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn header_names_are_checked() {
        let f = Field::root().key("h");
        assert_eq!(check_header_name(&f, "X-Api-Key").unwrap(), "x-api-key");
        for bad in ["", ":path", "a b", "é"] {
            assert!(check_header_name(&f, bad).is_err(), "{bad:?}");
        }
    }
}
