//! The bench rows, declared in `tests/integration/bench/rows.json` plus one file per filter in
//! `bench/rows.d/*.json` (read in name order), so adding a configuration needs no code and
//! filters do not share a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::proof::Proof;
use crate::paths::repo_root;

/// One configuration to measure.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub name: String,
    /// Config template file in the bench dir (placeholders as in [`crate::render`]).
    pub config: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_path")]
    pub path: String,
    /// Request body file in the bench dir; sent through a generated wrk Lua script.
    #[serde(default)]
    pub body_file: Option<String>,
    pub expect_status: u16,
    /// The counters that prove the filter did its job (see [`Proof`]); required.
    pub proof: Proof,
}

fn default_method() -> String {
    "GET".into()
}

fn default_path() -> String {
    "/".into()
}

/// `tests/integration/bench`.
pub fn bench_dir() -> PathBuf {
    repo_root().join("tests/integration/bench")
}

impl Row {
    pub fn config_template(&self) -> Result<String, String> {
        read(&bench_dir().join(&self.config))
    }

    pub fn body(&self) -> Result<Option<Vec<u8>>, String> {
        self.body_path()
            .map(|p| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display())))
            .transpose()
    }

    pub fn body_path(&self) -> Option<PathBuf> {
        self.body_file.as_ref().map(|f| bench_dir().join(f))
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// All rows from `rows.json`, checked: unique names, a `none` baseline, a token method.
pub fn load_rows() -> Result<Vec<Row>, String> {
    let mut paths = vec![bench_dir().join("rows.json")];
    if let Ok(entries) = std::fs::read_dir(bench_dir().join("rows.d")) {
        let mut extra: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        extra.sort();
        paths.extend(extra);
    }
    let mut rows: Vec<Row> = Vec::new();
    for path in &paths {
        let more: Vec<Row> =
            serde_json::from_str(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        rows.extend(more);
    }
    for (i, row) in rows.iter().enumerate() {
        if rows.iter().take(i).any(|r| r.name == row.name) {
            return Err(format!("rows.json: duplicate row name {:?}", row.name));
        }
        if row.method.is_empty() || !row.method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!(
                "rows.json: row {:?}: bad method {:?}",
                row.name, row.method
            ));
        }
        if !(100..600).contains(&row.expect_status) {
            return Err(format!("rows.json: row {:?}: bad expect_status", row.name));
        }
        row.proof
            .validate()
            .map_err(|e| format!("rows.json: row {:?}: {e}", row.name))?;
    }
    if !rows.iter().any(|r| r.name == "none") {
        return Err("rows.json: the `none` row (no filter) is the baseline and must exist".into());
    }
    Ok(rows)
}

/// The rows named in `selection` (comma-separated; empty = all), in file order, always
/// including `none` since `added_us` is measured against it.
pub fn select(rows: Vec<Row>, selection: &str) -> Result<Vec<Row>, String> {
    let wanted: Vec<&str> = selection
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(unknown) = wanted.iter().find(|w| !rows.iter().any(|r| r.name == **w)) {
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        return Err(format!(
            "unknown row {unknown:?}; rows are: {}",
            names.join(", ")
        ));
    }
    Ok(rows
        .into_iter()
        .filter(|r| wanted.is_empty() || r.name == "none" || wanted.contains(&r.name.as_str()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rows_load_and_have_configs() {
        let rows = load_rows().unwrap();
        for row in &rows {
            row.config_template().unwrap();
            row.body().unwrap();
        }
    }

    #[test]
    fn select_keeps_baseline_and_rejects_unknown() {
        let rows = load_rows().unwrap();
        let picked = select(rows.clone(), "wasm-noop").unwrap();
        let names: Vec<_> = picked.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["none", "wasm-noop"]);
        assert!(select(rows, "nope").is_err());
    }
}
