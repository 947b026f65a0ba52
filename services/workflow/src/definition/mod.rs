//! Workflow definitions: the YAML files of `workflows/`, checked before anything runs them.
//!
//! [`load`] reads a file into a [`Compiled`] definition, or into every [`Diagnostic`] found, each
//! with its line and column: YAML syntax, the schema ([`model`]), and the semantics
//! ([`validate`]: references, reachability, gateways, parallel joins, CEL, durations, segregation
//! of duties). A definition's version is the hash of its content.

pub mod duration;
pub mod files;
pub mod model;
mod validate;
pub mod yaml;

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use model::{Definition, Node};

/// One thing wrong with a definition, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// A checked definition, ready to run: the graph indexed and every expression compiled.
#[derive(Clone)]
pub struct Compiled {
    /// The definition as written.
    pub definition: Definition,
    /// The version: the first 16 hex digits of the SHA-256 of the file's content.
    pub version: String,
    /// The source, as stored with the version.
    pub source: String,
    index: HashMap<String, usize>,
    programs: HashMap<String, Arc<cel::Program>>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("id", &self.definition.id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Compiled {
    /// The node of id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index
            .get(id)
            .and_then(|&i| self.definition.nodes.get(i))
    }

    /// The node an instance starts at.
    pub fn start(&self) -> Option<&Node> {
        self.definition
            .nodes
            .iter()
            .find(|node| matches!(node, Node::Start { .. }))
    }

    /// The compiled form of an expression of this definition.
    pub fn program(&self, source: &str) -> Option<&cel::Program> {
        self.programs.get(source).map(AsRef::as_ref)
    }

    /// How many incoming paths a node has (a parallel join waits for that many): one per node
    /// leading to it, however many of its alternative branches do.
    pub fn incoming(&self, id: &str) -> usize {
        self.definition
            .nodes
            .iter()
            .filter(|node| node.successors().iter().any(|(_, next)| *next == id))
            .count()
    }
}

/// The version of a content: the first 16 hex digits of its SHA-256.
pub fn version_of(source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reads and checks a definition.
///
/// # Errors
/// Every problem found, in file order.
pub fn load(source: &str) -> Result<Compiled, Vec<Diagnostic>> {
    let (value, positions) = yaml::parse(source).map_err(|error| {
        vec![Diagnostic {
            line: error.line,
            column: error.column,
            message: error.message,
        }]
    })?;
    let definition: Definition = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = error.inner().to_string();
        let unknown_key = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .and_then(|(key, _)| {
                positions.of_key(&if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                })
            });
        let (line, column) = unknown_key.unwrap_or_else(|| positions.of(&path));
        let at = if path.is_empty() {
            String::new()
        } else {
            format!("{path}: ")
        };
        vec![Diagnostic {
            line,
            column,
            message: format!("{at}{message}"),
        }]
    })?;
    let (programs, mut diagnostics) = validate::check(&definition, &positions);
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        return Err(diagnostics);
    }
    let index = definition
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id().to_owned(), i))
        .collect();
    Ok(Compiled {
        version: version_of(source),
        source: source.to_owned(),
        definition,
        index,
        programs,
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
