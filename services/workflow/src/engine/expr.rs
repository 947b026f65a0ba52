//! Evaluating a definition's CEL over an instance's variables.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::{Context, Value};
use serde_json::Value as Json;

use crate::definition::Compiled;

/// An expression that could not be evaluated, or gave the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{source_text}`: {reason}")]
pub struct ExprError {
    /// The expression.
    pub source_text: String,
    /// Why.
    pub reason: String,
}

/// JSON to CEL.
pub fn to_cel(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_u64().map(Value::UInt))
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Json::Object(map) => Value::Map(Map {
            map: Arc::new(
                map.iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                    .collect::<HashMap<_, _>>(),
            ),
        }),
    }
}

/// CEL to JSON (what a service task's input or a child's variables carry).
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.as_ref().clone()),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => Json::Object(
            map.map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Key::String(s) => s.as_ref().clone(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        other => Json::String(format!("{other:?}")),
    }
}

/// The names an expression sees: the variables, then `extra` (which win).
pub struct Scope<'a> {
    /// The instance's variables (task results included, by node id).
    pub variables: &'a serde_json::Map<String, Json>,
    /// More names for this evaluation (the counts of a completion condition, say).
    pub extra: &'a [(&'a str, Json)],
}

/// Evaluates `source` (compiled with the definition) in `scope`.
///
/// # Errors
/// An expression the definition does not hold, or a failing evaluation.
pub fn eval(compiled: &Compiled, source: &str, scope: &Scope<'_>) -> Result<Value, ExprError> {
    let error = |reason: String| ExprError {
        source_text: source.to_owned(),
        reason,
    };
    let program = compiled
        .program(source)
        .ok_or_else(|| error("not an expression of this definition".to_owned()))?;
    let mut context = Context::default();
    // Only the names the expression uses are converted.
    for name in program.references().variables() {
        if let Some((_, value)) = scope.extra.iter().find(|(n, _)| *n == name) {
            context.add_variable_from_value(name, to_cel(value));
        } else if let Some(value) = scope.variables.get(name) {
            context.add_variable_from_value(name, to_cel(value));
        }
    }
    program.execute(&context).map_err(|e| error(e.to_string()))
}

/// Evaluates a condition.
///
/// # Errors
/// A failing evaluation or a result that is not a boolean.
pub fn condition(compiled: &Compiled, source: &str, scope: &Scope<'_>) -> Result<bool, ExprError> {
    match eval(compiled, source, scope)? {
        Value::Bool(b) => Ok(b),
        other => Err(ExprError {
            source_text: source.to_owned(),
            reason: format!("gave {other:?}, not a boolean"),
        }),
    }
}

/// Evaluates an expression that names users: one string or a list of strings.
///
/// # Errors
/// A failing evaluation or a result of another type.
pub fn users(
    compiled: &Compiled,
    source: &str,
    scope: &Scope<'_>,
) -> Result<Vec<String>, ExprError> {
    let bad = |what: &Value| ExprError {
        source_text: source.to_owned(),
        reason: format!("gave {what:?}, not a user id or a list of them"),
    };
    match eval(compiled, source, scope)? {
        Value::String(s) => Ok(vec![s.as_ref().clone()]),
        Value::List(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.as_ref().clone()),
                other => Err(bad(other)),
            })
            .collect(),
        other => Err(bad(&other)),
    }
}
