//! `apim manifests sync|check`: keeps the sha256 values of the deployment manifests
//! (`envoy/istio/**`, `envoy/gateway-api/**`) equal to the build.
//!
//! A pinned value is a line marked with a trailing comment:
//!
//! ```text
//! sha256: <64 hex>  # module: <module>   the sha256 of target/wasm32-wasip1/release/<module>.wasm
//! sha256: <64 hex>  # image: <module>    the manifest digest of the module's OCI image, the
//!                                        one `make oci` prints (the image is deterministic)
//! ```
//!
//! `sync` rewrites every marked value from the built modules; `check` lists stale ones and
//! exits 1. Run from the repository root (or pass it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kit::digest::{sha256, to_hex};

/// The manifest trees, relative to the repository root.
pub const DIRS: [&str; 2] = ["envoy/istio", "envoy/gateway-api"];
/// Where the release modules are, relative to the repository root.
pub const MODULE_DIR: &str = "target/wasm32-wasip1/release";
/// A bound on a manifest's size: they are a few KiB.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Module,
    Image,
}

/// A marked line: what it pins and the value it holds now (empty if no 64-hex value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub kind: Kind,
    pub module: String,
    pub hex: String,
}

/// The marker of one line, if it has one.
pub fn parse_line(line: &str) -> Option<Marked> {
    let (value, comment) = line.split_once('#')?;
    let comment = comment.trim();
    let (kind, module) = if let Some(m) = comment.strip_prefix("module:") {
        (Kind::Module, m.trim())
    } else if let Some(m) = comment.strip_prefix("image:") {
        (Kind::Image, m.trim())
    } else {
        return None;
    };
    let hex = value
        .split_once("sha256:")
        .map(|(_, rest)| rest.trim().trim_matches('"'))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or("")
        .to_ascii_lowercase();
    Some(Marked {
        kind,
        module: module.to_string(),
        hex,
    })
}

/// The line with the value after `sha256:` replaced by `hex` (quotes, indentation and the
/// comment kept). `None` if the line has no `sha256:` before its comment.
pub fn rewrite_line(line: &str, hex: &str) -> Option<String> {
    let hash = line.find('#')?;
    let (value, comment) = line.split_at(hash);
    let at = value.find("sha256:")?;
    let (before, after) = value.split_at(at + "sha256:".len());
    let quote = if after.trim_start().starts_with('"') {
        "\""
    } else {
        ""
    };
    // `url: …@sha256:<hex>` has no space after the colon; a `sha256: <hex>` field has one.
    let space = if after.starts_with(' ') { " " } else { "" };
    let gap = after.get(after.trim_end().len()..).unwrap_or("");
    let gap = if gap.is_empty() { "  " } else { gap };
    Some(format!("{before}{space}{quote}{hex}{quote}{gap}{comment}"))
}

/// The values the build gives, computed once per (kind, module).
struct Build {
    root: PathBuf,
    cache: BTreeMap<(Kind, String), Result<String, String>>,
}

impl Build {
    fn value(&mut self, kind: Kind, module: &str) -> Result<String, String> {
        let root = &self.root;
        self.cache
            .entry((kind, module.to_string()))
            .or_insert_with(|| digest(root, kind, module))
            .clone()
    }
}

/// What a marked line pins for `module` as built under `root`: the module's sha256 or its OCI
/// image's manifest digest (as `make oci` prints it), hex.
pub fn digest(root: &Path, kind: Kind, module: &str) -> Result<String, String> {
    let valid = !module.is_empty()
        && module
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(format!("bad module name {module:?}"));
    }
    let path = root.join(MODULE_DIR).join(format!("{module}.wasm"));
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("{}: {e} (run `make build` first)", path.display()))?;
    match kind {
        Kind::Module => Ok(to_hex(&sha256(&bytes))),
        Kind::Image => crate::oci::build(&bytes, "latest").map(|image| {
            image
                .manifest_digest
                .trim_start_matches("sha256:")
                .to_string()
        }),
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

pub(crate) fn read(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_MANIFEST_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

/// One stale line: `file:line: …`.
#[derive(Debug)]
pub struct Stale {
    pub location: String,
    pub marked: Marked,
    pub want: String,
}

/// Scans the manifests under `root`; with `write`, rewrites stale lines in place.
/// Returns (marked lines seen, stale lines).
pub fn scan(root: &Path, write: bool) -> Result<(usize, Vec<Stale>), String> {
    let mut files = Vec::new();
    for dir in DIRS {
        yaml_files(&root.join(dir), &mut files);
    }
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no manifests under {}/{{{}}}: run from the repository root",
            root.display(),
            DIRS.join(",")
        ));
    }
    let mut build = Build {
        root: root.to_path_buf(),
        cache: BTreeMap::new(),
    };
    let mut seen = 0;
    let mut stale = Vec::new();
    for file in files {
        let text = read(&file)?;
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let (body, eol) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            let Some(marked) = parse_line(body) else {
                out.push_str(line);
                continue;
            };
            seen += 1;
            let location = format!("{rel}:{}", i + 1);
            let want = build
                .value(marked.kind, &marked.module)
                .map_err(|e| format!("{location}: {e}"))?;
            if marked.hex == want {
                out.push_str(line);
                continue;
            }
            let new = rewrite_line(body, &want)
                .ok_or(format!("{location}: marked line has no `sha256:` value"))?;
            out.push_str(&new);
            out.push_str(eol);
            changed = true;
            stale.push(Stale {
                location,
                marked,
                want,
            });
        }
        if write && changed {
            std::fs::write(&file, out).map_err(|e| format!("{}: {e}", file.display()))?;
        }
    }
    Ok((seen, stale))
}

fn root_of(arg: Option<&str>) -> PathBuf {
    PathBuf::from(arg.unwrap_or("."))
}

fn describe(s: &Stale) -> String {
    let what = match s.marked.kind {
        Kind::Module => "module",
        Kind::Image => "image",
    };
    let old = if s.marked.hex.is_empty() {
        "missing"
    } else {
        &s.marked.hex
    };
    format!(
        "{}: {what} {}: {old} -> {}",
        s.location, s.marked.module, s.want
    )
}

/// `apim manifests sync [ROOT]`.
pub fn sync(root: Option<&str>) -> Result<String, String> {
    let root = root_of(root);
    // First the rendered bootstraps: the native twins below are made from them.
    let rendered = crate::product::shipped::scan(&root, true)?;
    let (seen, stale) = scan(&root, true)?;
    let mut out: Vec<String> = rendered
        .iter()
        .map(|path| format!("{path}: rendered from its product file"))
        .collect();
    out.extend(stale.iter().map(describe));
    out.push(format!(
        "{seen} marked sha256 lines, {} rewritten",
        stale.len()
    ));
    let twins = crate::native_examples::scan(&root, true)?;
    out.extend(
        twins
            .iter()
            .map(|(path, _)| format!("{path}: rewritten from its Wasm example")),
    );
    Ok(out.join("\n"))
}

/// `apim manifests check [ROOT]`: 0 if every marked line is up to date, every native example is
/// its Wasm example's twin (`crate::native_examples`), every rendered bootstrap its product
/// file's render (`crate::product::shipped`) and every filter config
/// passes `apim validate --target` for its tree (istio, gateway-api), 1 listing what is stale or
/// refused, 2 on errors (a module not built, unreadable files).
pub fn check(root: Option<&str>) -> ExitCode {
    let root = root_of(root);
    let (errors, warnings, configs) = match crate::validate_target::check_manifests(&root) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The shipped manifests carry placeholder digests in every api-key-auth config: a few
    // examples say it, not dozens of lines.
    for w in warnings.iter().take(3) {
        eprintln!("warning: {w}");
    }
    if warnings.len() > 3 {
        eprintln!("warning: … and {} more", warnings.len() - 3);
    }
    for e in &errors {
        eprintln!("{e}");
    }
    let stale = match scan(&root, false) {
        Ok((seen, stale)) if stale.is_empty() => {
            println!("{seen} marked sha256 lines, all up to date");
            0
        }
        Ok((seen, stale)) => {
            for s in &stale {
                eprintln!("{}", describe(s));
            }
            eprintln!(
                "{} of {seen} marked sha256 lines are stale: run `apim manifests sync`",
                stale.len()
            );
            stale.len()
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "{configs} filter configs checked for their target, {} refused",
        errors.len()
    );
    let twins = match crate::native_examples::scan(&root, false) {
        Ok(twins) => twins,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for (path, _) in &twins {
        eprintln!("{path} differs from its Wasm example's twin: run `apim manifests sync`");
    }
    let rendered = match crate::product::shipped::scan(&root, false) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for path in &rendered {
        eprintln!("{path} differs from its product file's render: run `apim manifests sync`");
    }
    if stale == 0 && errors.is_empty() && twins.is_empty() && rendered.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    #[test]
    fn lines_are_parsed() {
        let cases: &[(&str, Option<(Kind, &str, String)>)] = &[
            (
                &format!("  sha256: {}  # module: quota", hex('a')),
                Some((Kind::Module, "quota", hex('a'))),
            ),
            (
                &format!("  sha256: \"{}\" # image: transform", hex('B')),
                Some((Kind::Image, "transform", hex('b'))),
            ),
            (
                "  sha256: TODO  # module: quota",
                Some((Kind::Module, "quota", String::new())),
            ),
            ("  sha256: abc  # a comment", None),
            ("  name: quota", None),
        ];
        for (line, want) in cases {
            let got = parse_line(line).map(|m| (m.kind, m.module.clone(), m.hex));
            let want = want.clone().map(|(k, m, h)| (k, m.to_string(), h));
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn lines_are_rewritten_in_place() {
        let new = hex('c');
        let cases = [
            (
                format!("    sha256: {}  # module: quota", hex('a')),
                format!("    sha256: {new}  # module: quota"),
            ),
            (
                format!("    sha256: \"{}\"   # image: quota", hex('a')),
                format!("    sha256: \"{new}\"   # image: quota"),
            ),
            (
                "    sha256:# module: quota".to_string(),
                format!("    sha256:{new}  # module: quota"),
            ),
            (
                format!("  url: oci://r/x@sha256:{} # image: x", hex('a')),
                format!("  url: oci://r/x@sha256:{new} # image: x"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(rewrite_line(&line, &new).as_deref(), Some(want.as_str()));
            let parsed = parse_line(&want).map(|m| m.hex);
            assert_eq!(parsed.as_deref(), Some(new.as_str()));
        }
        assert_eq!(rewrite_line("name: x # module: x", &new), None);
    }

    #[test]
    fn sync_rewrites_and_check_then_passes() {
        let root = std::env::temp_dir().join(format!("apim-manifests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("envoy/istio")).unwrap();
        std::fs::create_dir_all(root.join(MODULE_DIR)).unwrap();
        let module = b"\0asm\x01\0\0\0".to_vec();
        std::fs::write(root.join(MODULE_DIR).join("m.wasm"), &module).unwrap();
        let manifest = root.join("envoy/istio/x.yaml");
        std::fs::write(
            &manifest,
            format!(
                "a:\n  sha256: {}  # module: m\n  sha256: {}  # image: m\n",
                hex('0'),
                hex('0')
            ),
        )
        .unwrap();
        let (seen, stale) = scan(&root, false).unwrap();
        assert_eq!((seen, stale.len()), (2, 2));
        scan(&root, true).unwrap();
        let (seen, stale) = scan(&root, false).unwrap();
        assert_eq!((seen, stale.len()), (2, 0));
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.contains(&to_hex(&sha256(&module))), "{text}");
        let image = crate::oci::build(&module, "latest").unwrap();
        assert!(
            text.contains(image.manifest_digest.trim_start_matches("sha256:")),
            "{text}"
        );
        // A marked module that is not built is an error, not a silent pass.
        std::fs::write(&manifest, "sha256: x  # module: missing\n").unwrap();
        assert!(scan(&root, false).unwrap_err().contains("missing.wasm"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
