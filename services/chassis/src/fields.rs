//! Typed fields: the variables of a workflow, the form of a task, the attributes of a CI type.
//! A schema is a map of names to [`Field`]s; [`check`] holds a JSON object against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A typed field: of the start variables or of a task's form.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Whether it must be given.
    #[serde(default)]
    pub required: bool,
    /// The allowed values (strings only).
    #[serde(default, rename = "enum")]
    pub allowed: Vec<String>,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

impl FieldType {
    /// The name a schema gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::StringList => "string_list",
            Self::Object => "object",
        }
    }
}

/// The types a field may have.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text.
    String,
    /// Whole number.
    Integer,
    /// Any number.
    Number,
    /// True or false.
    Boolean,
    /// A list of strings (user ids, say).
    StringList,
    /// Any JSON object.
    Object,
}

/// Checks `values` against typed `fields`; `prefix` names them in errors.
///
/// # Errors
/// The first missing, unknown or mistyped field: its path (`<prefix>.<name>`) and why.
pub fn check(
    fields: &BTreeMap<String, Field>,
    values: &serde_json::Map<String, Json>,
    prefix: &str,
) -> Result<(), (String, String)> {
    let invalid = |name: &str, reason: String| (format!("{prefix}.{name}"), reason);
    for name in values.keys() {
        if !fields.contains_key(name) {
            return Err(invalid(name, "is not a field of this form".to_owned()));
        }
    }
    for (name, field) in fields {
        let Some(value) = values.get(name).filter(|v| !v.is_null()) else {
            if field.required {
                return Err(invalid(name, "is required".to_owned()));
            }
            continue;
        };
        let ok = match field.kind {
            FieldType::String => value.is_string(),
            FieldType::Integer => value.is_i64() || value.is_u64(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
            FieldType::StringList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Json::is_string)),
            FieldType::Object => value.is_object(),
        };
        if !ok {
            return Err(invalid(name, format!("must be {}", field.kind.as_str())));
        }
        if !field.allowed.is_empty()
            && !value
                .as_str()
                .is_some_and(|s| field.allowed.iter().any(|a| a == s))
        {
            return Err(invalid(
                name,
                format!("must be one of {}", field.allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Serialises a stored time (UTC without an offset, as the database keeps it) as RFC 3339 with
/// its `Z`, as the API documents every time: `#[serde(serialize_with = "…::fields::utc")]`.
///
/// # Errors
/// The serialiser's.
pub fn utc<S: serde::Serializer>(
    time: &chrono::NaiveDateTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(
        &time
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_stored_time_is_written_with_its_utc_offset() {
        #[derive(serde::Serialize)]
        struct At(#[serde(serialize_with = "utc")] chrono::NaiveDateTime);
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_micro_opt(18, 50, 45, 87_762)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&At(at)).unwrap(),
            "\"2026-11-26T18:50:45.087762Z\""
        );
    }

    fn schema() -> BTreeMap<String, Field> {
        serde_json::from_value(json!({
            "engine": {"type": "string", "required": true, "enum": ["postgres", "mysql"]},
            "cores": {"type": "integer"},
            "tags": {"type": "string_list"},
        }))
        .unwrap()
    }

    #[test]
    fn values_are_held_against_their_schema() {
        let ok = json!({"engine": "postgres", "cores": 4, "tags": ["a"]});
        assert_eq!(
            check(&schema(), ok.as_object().unwrap(), "attributes"),
            Ok(())
        );
        let cases = [
            (json!({}), "attributes.engine", "is required"),
            (
                json!({"engine": "oracle"}),
                "attributes.engine",
                "must be one of postgres, mysql",
            ),
            (
                json!({"engine": "mysql", "cores": 1.5}),
                "attributes.cores",
                "must be integer",
            ),
            (
                json!({"engine": "mysql", "tags": [1]}),
                "attributes.tags",
                "must be string_list",
            ),
            (
                json!({"engine": "mysql", "colour": 1}),
                "attributes.colour",
                "is not a field of this form",
            ),
        ];
        for (value, field, reason) in cases {
            assert_eq!(
                check(&schema(), value.as_object().unwrap(), "attributes"),
                Err((field.to_owned(), reason.to_owned())),
                "{value}"
            );
        }
    }
}
