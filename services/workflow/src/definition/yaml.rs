//! YAML to JSON values, remembering where each value stands in the file, so that every error
//! about a definition (schema or semantic) can name its line and column.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Line and column (both 1-based) of each value, by path (`nodes[3].next`, the form
/// `serde_path_to_error` prints), and of each mapping key.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    values: HashMap<String, (usize, usize)>,
    keys: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// The position of the key that `path` ends with (an unknown field, say).
    pub fn of_key(&self, path: &str) -> Option<(usize, usize)> {
        self.keys.get(path).copied()
    }

    /// The position of `path`, or of its nearest enclosing value that has one.
    pub fn of(&self, path: &str) -> (usize, usize) {
        let mut path = path;
        loop {
            if let Some(position) = self.values.get(path) {
                return *position;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.values.get("").copied().unwrap_or((1, 1)),
            }
        }
    }
}

/// A YAML syntax error at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses one YAML document into a JSON value and the positions of its values. Anchors and
/// aliases are refused: a definition says everything where it is used.
///
/// # Errors
/// Bad YAML, more than one document, an alias, or a key that is not a string.
pub fn parse(source: &str) -> Result<(Value, Positions), SyntaxError> {
    let mut builder = Builder::default();
    Parser::new_from_str(source)
        .load(&mut builder, false)
        .map_err(|error| SyntaxError {
            line: error.marker().line(),
            column: error.marker().col() + 1,
            message: error.info().to_owned(),
        })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    let value = builder.root.unwrap_or(Value::Null);
    Ok((value, builder.positions))
}

enum Frame {
    Seq(Vec<Value>, String),
    Map(Map<String, Value>, String, Option<String>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    positions: Positions,
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, mark: Marker, message: &str) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                line: mark.line(),
                column: mark.col() + 1,
                message: message.to_owned(),
            });
        }
    }

    /// The path of the next value, or `None` when the next scalar is a mapping key.
    fn next_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq(items, path)) => Some(format!("{path}[{}]", items.len())),
            Some(Frame::Map(_, path, Some(key))) => Some(if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            }),
            Some(Frame::Map(_, _, None)) => None,
        }
    }

    fn place(&mut self, value: Value, mark: Marker) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq(items, _)) => items.push(value),
            Some(Frame::Map(map, _, key)) => match key.take() {
                Some(key) => {
                    if map.insert(key.clone(), value).is_some() {
                        self.fail(mark, &format!("duplicate key `{key}`"));
                    }
                }
                None => self.fail(mark, "a mapping key must be a plain string"),
            },
        }
    }
}

fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "~" | "null" | "Null" | "NULL" | "" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(int) = text.parse::<i64>() {
                Value::Number(int.into())
            } else if let Some(number) = text
                .parse::<f64>()
                .ok()
                .filter(|_| text.bytes().any(|b| b.is_ascii_digit()))
                .and_then(Number::from_f64)
            {
                Value::Number(number)
            } else {
                Value::String(text)
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let position = (mark.line(), mark.col() + 1);
        match event {
            Event::Scalar(text, style, _, _) => match self.next_path() {
                Some(path) => {
                    self.positions.values.insert(path, position);
                    self.place(scalar(text, style), mark);
                }
                None => {
                    if let Some(Frame::Map(map, path, key)) = self.stack.last_mut() {
                        let at = if path.is_empty() {
                            text.clone()
                        } else {
                            format!("{path}.{text}")
                        };
                        // A block mapping is marked after its first key: mark it at the key.
                        if map.is_empty() {
                            self.positions.values.insert(path.clone(), position);
                        }
                        self.positions.keys.insert(at, position);
                        *key = Some(text);
                    }
                }
            },
            Event::SequenceStart(..) | Event::MappingStart(..) => match self.next_path() {
                Some(path) => {
                    self.positions.values.insert(path.clone(), position);
                    self.stack
                        .push(if matches!(event, Event::SequenceStart(..)) {
                            Frame::Seq(Vec::new(), path)
                        } else {
                            Frame::Map(Map::new(), path, None)
                        });
                }
                None => self.fail(mark, "a mapping key must be a plain string"),
            },
            Event::SequenceEnd | Event::MappingEnd => {
                let value = match self.stack.pop() {
                    Some(Frame::Seq(items, _)) => Value::Array(items),
                    Some(Frame::Map(map, _, _)) => Value::Object(map),
                    None => return,
                };
                self.place(value, mark);
            }
            Event::Alias(_) => self.fail(mark, "anchors and aliases are not supported"),
            Event::DocumentStart if self.root.is_some() => {
                self.fail(mark, "a definition file holds one document");
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_and_their_positions() {
        let source = "id: cab\nnodes:\n  - id: start\n    next: end\n  - id: end\n    n: 3\n    ok: true\n    q: \"3\"\n";
        let (value, positions) = parse(source).unwrap();
        assert_eq!(
            value,
            json!({"id": "cab", "nodes": [{"id": "start", "next": "end"}, {"id": "end", "n": 3, "ok": true, "q": "3"}]})
        );
        assert_eq!(positions.of("id"), (1, 5));
        assert_eq!(positions.of("nodes[0].next"), (4, 11));
        assert_eq!(positions.of("nodes[1]"), (5, 5));
        assert_eq!(positions.of_key("nodes[1].ok"), Some((7, 5)));
        assert_eq!(positions.of("nodes[1].missing"), (5, 5));
    }

    #[test]
    fn syntax_errors_duplicate_keys_and_aliases_have_positions() {
        let error = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(error.line >= 1, "{error:?}");
        let error = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            (error.line, error.message.as_str()),
            (3, "duplicate key `a`")
        );
        let error = parse("a: &x 1\nb: *x\n").unwrap_err();
        assert_eq!(error.line, 2);
    }
}
