//! Definitions on disk: the `workflows/` folder, or the files `meridian workflows validate` names.

use std::path::{Path, PathBuf};

use super::{Compiled, Node, load};

/// The definition files under `paths`: files as given, folders for their `.yaml` and `.yml`
/// files (not recursively), sorted.
///
/// # Errors
/// A path that cannot be read.
pub fn files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| is_definition(p))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            std::fs::metadata(path)?;
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Loads every file; returns the definitions and the problems, each as
/// `file:line:column: message`. Besides each file's own checks: one file per definition id,
/// and every called definition present.
pub fn load_all(files: &[PathBuf]) -> (Vec<(PathBuf, Compiled)>, Vec<String>) {
    let mut loaded: Vec<(PathBuf, Compiled)> = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let shown = file.display();
        match std::fs::read_to_string(file) {
            Err(error) => problems.push(format!("{shown}: cannot be read: {error}")),
            Ok(source) => match load(&source) {
                Ok(compiled) => loaded.push((file.clone(), compiled)),
                Err(diagnostics) => {
                    problems.extend(diagnostics.iter().map(|d| format!("{shown}:{d}")));
                }
            },
        }
    }
    for (i, (file, compiled)) in loaded.iter().enumerate() {
        let id = &compiled.definition.id;
        if let Some((first, _)) = loaded[..i].iter().find(|(_, c)| c.definition.id == *id) {
            problems.push(format!(
                "{}:1:1: the definition id `{id}` is also in {}",
                file.display(),
                first.display()
            ));
        }
    }
    if problems.is_empty() {
        problems.extend(missing_calls(&loaded));
    }
    (loaded, problems)
}

fn missing_calls(loaded: &[(PathBuf, Compiled)]) -> Vec<String> {
    let known = |id: &str| loaded.iter().any(|(_, c)| c.definition.id == id);
    let mut problems = Vec::new();
    for (file, compiled) in loaded {
        for node in &compiled.definition.nodes {
            if let Node::CallActivity { id, definition, .. } = node
                && !known(definition)
            {
                problems.push(format!(
                    "{}: node `{id}` calls the definition `{definition}`, which is not among these files",
                    file.display()
                ));
            }
        }
    }
    problems
}

/// Whether `path` looks like a definition file.
pub fn is_definition(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}
