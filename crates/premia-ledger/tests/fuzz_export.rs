//! Fuzz target `export`: the export line decoder (`ImportedRecord::parse`, what `premia ingest`
//! of an export and `premia recover --from-export` read) on arbitrary bytes and on real export
//! lines of the seed month damaged structure-aware and byte-wise; and, for one case in ten,
//! a whole export with some lines damaged, dropped, repeated or swapped, imported into a fresh
//! ledger on sled. Properties: never panics; a refused line is named by its number with a
//! reason; an accepted line holds exactly what it says (its hex reads back as written) and
//! survives being written out and read again; an import either takes the whole intact export or
//! stops with a sentence.
//!
//! `PREMIA_FUZZ_CASES` / `PREMIA_FUZZ_SECONDS`: see premia-core's tests/fuzz_support/mod.rs.

#[path = "../../premia-core/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::io::Cursor;
use std::sync::OnceLock;

use fuzz_support::mutate::{
    apply_edits, apply_mutations, arbitrary_line, edit, mutated_line, mutation, Edit, Line, Mutation,
};
use premia_core::seal::hex;
use premia_ledger::export::{export, import_export, ExportLine, ImportError, ImportedRecord};
use premia_ledger::{ingest_reader, IngestOptions, Ledger, LedgerOptions, LogRecord};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const SEED_MONTH: &str = include_str!("../../../tests/data/seed-month.jsonl");

fn open(dir: &std::path::Path) -> Ledger {
    match Ledger::open(dir, &LedgerOptions::default(), "fuzz") {
        Ok(ledger) => ledger,
        Err(e) => panic!("a ledger opens in a fresh directory: {e}"),
    }
}

/// The export of the seed month, one line each (written once per process).
fn export_lines() -> &'static [&'static str] {
    static LINES: OnceLock<Vec<&'static str>> = OnceLock::new();
    LINES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let mut ledger = open(dir.path());
        let ingested = ingest_reader(&mut ledger, Cursor::new(SEED_MONTH), &IngestOptions::default(), |_| {});
        ingested.unwrap_or_else(|e| panic!("the seed month ingests: {e}"));
        let mut out = Vec::new();
        export(&ledger, 1, u64::MAX, &mut out).unwrap_or_else(|e| panic!("the seed month exports: {e}"));
        let text: &'static str = Box::leak(String::from_utf8(out).unwrap_or_default().into_boxed_str());
        text.lines().collect()
    })
}

/// Damage to a whole export: lines edited, dropped, repeated or swapped.
#[derive(Debug, Clone)]
enum Damage {
    Line { at: usize, edits: Vec<Edit>, mutations: Vec<Mutation> },
    Drop { at: usize },
    Repeat { at: usize },
    Swap { a: usize, b: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), proptest::collection::vec(edit(), 0..3), proptest::collection::vec(mutation(), 0..3))
            .prop_map(|(at, edits, mutations)| Damage::Line { at, edits, mutations }),
        1 => any::<usize>().prop_map(|at| Damage::Drop { at }),
        1 => any::<usize>().prop_map(|at| Damage::Repeat { at }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::Swap { a, b }),
    ]
}

fn damaged_export(damage: &[Damage]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = export_lines().iter().map(|l| l.as_bytes().to_vec()).collect();
    for d in damage {
        let n = lines.len();
        if n == 0 {
            break;
        }
        match d {
            Damage::Line { at, edits, mutations } => {
                let text = String::from_utf8_lossy(&lines[at % n]).into_owned();
                lines[at % n] = apply_mutations(apply_edits(&text, edits).into_bytes(), mutations);
            }
            Damage::Drop { at } => drop(lines.remove(at % n)),
            Damage::Repeat { at } => lines.insert(at % n, lines[at % n].clone()),
            Damage::Swap { a, b } => lines.swap(a % n, b % n),
        }
    }
    lines
}

#[derive(Debug, Clone)]
enum Input {
    One(Line),
    Export(Vec<Damage>),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => arbitrary_line().prop_map(Input::One),
        6 => mutated_line(export_lines(), 3, 4).prop_map(Input::One),
        1 => proptest::collection::vec(damage(), 0..4).prop_map(Input::Export),
    ]
}

fn check_refusal(error: &ImportError, number: u64) -> Result<(), TestCaseError> {
    match error {
        ImportError::NotExport { line, reason } => {
            prop_assert_eq!(*line, number);
            prop_assert!(!reason.trim().is_empty(), "line {} refused without a reason", line);
            Ok(())
        }
        other => Err(TestCaseError::fail(format!("decoding one line gave {other}, not a refusal of the line"))),
    }
}

/// An accepted line says exactly what was decoded, and the decoded record writes and reads back.
fn check_accepted(line: &[u8], record: &ImportedRecord) -> Result<(), TestCaseError> {
    let written: ExportLine = serde_json::from_slice(line).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&written.hash, &hex(&record.hash), "the hash read is not the hash written");
    if let Some(raw_hex) = &written.raw_hex {
        prop_assert_eq!(raw_hex, &hex(&record.raw), "raw_hex read is not raw_hex written");
    }
    let log_record = LogRecord {
        seq: record.seq,
        arrived_ms: record.arrived_ms,
        origin: record.origin.clone(),
        raw: record.raw.clone(),
        hash: record.hash,
    };
    let again = serde_json::to_vec(&ExportLine::of(&log_record)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    match ImportedRecord::parse(&again, 1) {
        Ok(back) => prop_assert_eq!(&back, record),
        Err(e) => return Err(TestCaseError::fail(format!("a decoded record, written again, is refused: {e}"))),
    }
    Ok(())
}

fn check_import(damage: &[Damage]) -> Result<(), TestCaseError> {
    let lines = damaged_export(damage);
    let intact = lines.iter().map(|l| l.as_slice()).eq(export_lines().iter().map(|l| l.as_bytes()));
    let mut text = lines.join(&b'\n');
    text.push(b'\n');
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut ledger = open(dir.path());
    match import_export(&mut ledger, Cursor::new(text), 7, |_| {}) {
        Ok(report) => {
            fuzz_support::accepted();
            prop_assert!(report.records as usize <= lines.len());
            if intact {
                prop_assert_eq!(report.records as usize, lines.len());
            }
        }
        Err(e) => {
            prop_assert!(!intact, "the intact export was refused: {}", e);
            prop_assert!(e.to_string().len() > 20, "a refusal without a sentence: {}", e);
        }
    }
    Ok(())
}

fn property(input: Input) -> Result<(), TestCaseError> {
    match input {
        Input::One(line) => match ImportedRecord::parse(&line.0, 3) {
            Ok(record) => {
                fuzz_support::accepted();
                check_accepted(&line.0, &record)
            }
            Err(error) => check_refusal(&error, 3),
        },
        Input::Export(damage) => check_import(&damage),
    }
}

/// Found by the fuzz target: a hash in capitals (or with a '+' in it) was read as the hash
/// written in lowercase, so an edited export line passed for the original.
#[test]
fn a_hash_not_in_lowercase_hex_is_refused() {
    let line = export_lines()[27];
    let written: ExportLine = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
    for hash in [written.hash.to_uppercase(), format!("+{}", &written.hash[1..])] {
        let edited = line.replace(&written.hash, &hash);
        let refused = ImportedRecord::parse(edited.as_bytes(), 28);
        assert!(
            matches!(&refused, Err(ImportError::NotExport { line: 28, reason }) if reason.contains("lowercase hex")),
            "{edited}: {refused:?}"
        );
    }
}

#[test]
fn fuzz_export_lines() {
    fuzz_support::run("export", file!(), 300, input(), property);
}

/// The seed month logs the scheme record the ledger writes first and its 27 applied events (of
/// 29 lines, one is a duplicate and one is rejected).
#[test]
fn the_seed_month_exports_one_line_per_logged_record() {
    assert_eq!(export_lines().len(), 28);
    for (i, line) in export_lines().iter().enumerate() {
        let record = ImportedRecord::parse(line.as_bytes(), 1);
        assert!(record.as_ref().is_ok_and(|r| r.seq == i as u64 + 1), "{line}: {record:?}");
    }
}
