//! Keeps the architecture invariant of lib.rs: premia-core does no IO, reads no clock, draws no
//! random numbers and has no async. Every dependency must be on the lists below (a new one is
//! looked at, and added here, before it is used), with only the features listed, and no source
//! file may name the standard library's files, network, processes, threads, environment or clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// What premia-core may depend on, each with the features it may have (its own and the
/// workspace's): none of them does IO, reads a clock or draws random numbers.
const ALLOWED_DEPENDENCIES: &[(&str, &[&str])] = &[
    ("foldhash", &[]),
    // A hash table without its default hasher (no random seed): names.rs keys it by the arena.
    ("hashbrown", &[]),
    ("rust_decimal", &["std", "serde", "serde-with-str"]),
    ("schemars", &[]),
    ("serde", &["derive", "rc"]),
    ("serde_json", &["arbitrary_precision"]),
    ("sha2", &[]),
    ("thiserror", &[]),
    // Not `local-offset`, which reads the system's time zone.
    ("time", &["parsing", "formatting", "macros", "serde"]),
    ("toml", &[]),
];

/// What its tests may use besides.
const ALLOWED_DEV_DEPENDENCIES: &[(&str, &[&str])] = &[("bincode", &[]), ("proptest", &[])];

/// Paths no source file of premia-core may name.
const FORBIDDEN_IN_SOURCE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "std::env",
    "SystemTime",
    "UNIX_EPOCH",
    "Instant::now",
    // The time crate's clock.
    "now_utc",
    "now_local",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_toml(path: &Path) -> Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

/// The features a dependency entry turns on.
fn features_of(entry: &Value) -> Vec<String> {
    let listed = entry.get("features").and_then(Value::as_array).cloned().unwrap_or_default();
    listed.iter().filter_map(Value::as_str).map(str::to_string).collect()
}

/// What is wrong with one dependency table: names not on `allowed`, features not allowed.
fn dependency_problems(
    kind: &str,
    table: Option<&Value>,
    workspace: &Table,
    allowed: &[(&str, &[&str])],
) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = allowed.iter().copied().collect();
    let mut problems = Vec::new();
    let entries = table.and_then(Value::as_table).cloned().unwrap_or_default();
    for (name, entry) in &entries {
        let Some(allowed_features) = allowed.get(name.as_str()) else {
            problems.push(format!(
                "{kind} {name} is not on the list of tidy.rs: premia-core does no IO, async, clock or storage; look at what {name} does before adding it there"
            ));
            continue;
        };
        let mut features = features_of(entry);
        if entry.get("workspace").and_then(Value::as_bool) == Some(true) {
            let shared = workspace.get("workspace").and_then(|w| w.get("dependencies")).and_then(|d| d.get(name));
            features.extend(shared.map(features_of).unwrap_or_default());
        }
        for feature in features.iter().filter(|f| !allowed_features.contains(&f.as_str())) {
            problems.push(format!("{kind} {name} has feature {feature:?}, which is not on the list of tidy.rs"));
        }
    }
    problems
}

/// Everything wrong with premia-core's manifest, given the workspace's.
fn manifest_problems(manifest: &Table, workspace: &Table) -> Vec<String> {
    let mut problems = dependency_problems("dependency", manifest.get("dependencies"), workspace, ALLOWED_DEPENDENCIES);
    problems.extend(dependency_problems(
        "dev-dependency",
        manifest.get("dev-dependencies"),
        workspace,
        ALLOWED_DEV_DEPENDENCIES,
    ));
    for section in ["build-dependencies", "target"] {
        if manifest.contains_key(section) {
            problems
                .push(format!("premia-core has a [{section}] section; tidy.rs does not check it, so none is allowed"));
        }
    }
    problems
}

/// Source text without line comments and white space, with `std::{a, b}` also written out as
/// `std::a` and `std::b`, so a path is found however it is imported.
fn normalized(source: &str) -> String {
    let code: String =
        source.lines().map(without_comment).flat_map(|line| line.chars().filter(|c| !c.is_whitespace())).collect();
    let mut expanded = code.clone();
    for (start, _) in code.match_indices("std::{") {
        let group = &code[start + "std::{".len()..];
        let mut depth = 0usize;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expanded.push_str(&format!(";std::{item}"));
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        expanded.push_str(&format!(";std::{item}"));
    }
    expanded
}

/// A line up to its `//` comment: the first `//` outside a string literal.
fn without_comment(line: &str) -> &str {
    for (at, _) in line.match_indices("//") {
        if line[..at].matches('"').count().is_multiple_of(2) {
            return &line[..at];
        }
    }
    line
}

/// The forbidden paths one source file names.
fn source_problems(name: &str, source: &str) -> Vec<String> {
    let code = normalized(source);
    FORBIDDEN_IN_SOURCE
        .iter()
        .filter(|path| code.contains(*path))
        .map(|path| format!("{name} uses {path}: premia-core does no IO and reads no clock"))
        .collect()
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

#[test]
fn the_core_depends_only_on_pure_crates() {
    let manifest = read_toml(&crate_dir().join("Cargo.toml"));
    let workspace = read_toml(&crate_dir().join("../../Cargo.toml"));
    let problems = manifest_problems(&manifest, &workspace);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_core_names_no_io_and_no_clock() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    assert!(files.len() > 10, "the sources of premia-core are found: {files:?}");
    let mut problems = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        problems.extend(source_problems(&file.display().to_string(), &source));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checks above catch what they look for, so a quiet pass means something.
#[test]
fn the_checks_find_what_they_look_for() {
    let workspace: Table =
        "[workspace.dependencies]\ntime = { version = \"0.3\", features = [\"local-offset\"] }\ntokio = \"1\"\n"
            .parse()
            .unwrap();
    let manifest: Table =
        "[dependencies]\ntokio.workspace = true\nserde.workspace = true\ntime.workspace = true\n[dev-dependencies]\nrand = \"0.8\"\n"
            .parse()
            .unwrap();
    let problems = manifest_problems(&manifest, &workspace);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("time has feature \"local-offset\""), "{problems:?}");
    assert!(problems[1].contains("dependency tokio"), "{problems:?}");
    assert!(problems[2].contains("dev-dependency rand"), "{problems:?}");
    for source in [
        "use std::fs;",
        "use std::{collections::BTreeMap, fs::File};",
        "let t = std::time::SystemTime::now();",
        "let now = std::time::Instant::now();",
        "use std::{\n    env,\n    sync::Arc,\n};",
        "let t = time::OffsetDateTime::now_utc();",
    ] {
        assert_eq!(source_problems("f.rs", source).len(), 1, "{source}");
    }
    for source in
        ["// Nothing here uses std::fs.", "let url = \"http://x\"; // std::net is elsewhere", "use std::sync::Arc;"]
    {
        assert!(source_problems("f.rs", source).is_empty(), "{source}");
    }
}
