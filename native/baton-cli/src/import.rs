//! `baton import maestro`: Maestro definitions into Baton YAML files (see baton-maestro).

use crate::Failure;
use baton_maestro::{ImportError, Imported};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Imports each file; writes `DIR/<workflow id>.yaml` for each one imported, unless `check`.
/// Every file is tried, and each refusal is reported with where and why; nothing is
/// written for a refused file.
pub(crate) fn maestro(
    files: &[PathBuf],
    out: &Path,
    json: bool,
    check: bool,
) -> Result<(), Failure> {
    let mut outcomes = Vec::new();
    let mut written: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        let name = file.display().to_string();
        let outcome = match std::fs::read_to_string(file) {
            Err(e) => Err(ImportError::Unreadable {
                file: name.clone(),
                reason: format!("cannot read: {e}"),
            }),
            Ok(text) => baton_maestro::import(&name, &text),
        };
        let outcome = outcome.and_then(|imported| {
            let target = out.join(format!("{}.yaml", imported.id));
            if let Some(first) = written.get(&imported.id) {
                return Err(ImportError::Unreadable {
                    file: name.clone(),
                    reason: format!(
                        "workflow `{}` was imported from {} already",
                        imported.id,
                        first.display()
                    ),
                });
            }
            if !check {
                std::fs::create_dir_all(out)
                    .and_then(|()| std::fs::write(&target, &imported.yaml))
                    .map_err(|e| ImportError::Unreadable {
                        file: name.clone(),
                        reason: format!("cannot write {}: {e}", target.display()),
                    })?;
            }
            written.insert(imported.id.clone(), file.clone());
            Ok((imported, target))
        });
        outcomes.push((name, outcome));
    }
    let refused = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    if json {
        let list: Vec<_> = outcomes.iter().map(|(file, o)| as_json(file, o, check)).collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for (file, outcome) in &outcomes {
            match outcome {
                Ok((imported, target)) => print_imported(file, imported, target, check),
                Err(e) => eprintln!("{e}"),
            }
        }
        let imported = outcomes.len() - refused;
        println!(
            "{imported} imported{}, {refused} refused",
            if check { " (checked, nothing written)" } else { "" }
        );
    }
    if refused > 0 {
        Err(Failure::Invalid)
    } else {
        Ok(())
    }
}

fn print_imported(file: &str, imported: &Imported, target: &Path, check: bool) {
    if check {
        println!("{file}: workflow `{}` imports and is valid", imported.id);
    } else {
        println!("{file} -> {} (workflow `{}`)", target.display(), imported.id);
    }
    if !imported.host_types.is_empty() {
        println!(
            "  host step types to register before it runs: {}",
            imported.host_types.join(", ")
        );
    }
    for (tag, n) in &imported.limits {
        println!("  step_concurrency: run `baton limit {tag} {n}`");
    }
    for note in &imported.notes {
        println!("  note: {note}");
    }
}

fn as_json(
    file: &str,
    outcome: &Result<(Imported, PathBuf), ImportError>,
    check: bool,
) -> serde_json::Value {
    match outcome {
        Ok((i, target)) => json!({
            "file": file,
            "imported": true,
            "workflow": i.id,
            "output": if check { serde_json::Value::Null } else { json!(target.display().to_string()) },
            "host_types": i.host_types,
            "limits": i.limits.iter().map(|(tag, n)| json!({"tag": tag, "limit": n})).collect::<Vec<_>>(),
            "notes": i.notes,
        }),
        Err(ImportError::Refused { refusals, .. }) => json!({
            "file": file,
            "imported": false,
            "refused": refusals.iter().map(|r| json!({"at": r.at, "reason": r.reason})).collect::<Vec<_>>(),
        }),
        Err(ImportError::Invalid { errors, .. }) => json!({
            "file": file, "imported": false, "invalid": errors.errors,
        }),
        Err(e) => json!({ "file": file, "imported": false, "error": e.to_string() }),
    }
}
