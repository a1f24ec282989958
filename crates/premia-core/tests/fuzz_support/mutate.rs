//! Inputs for the fuzz targets: arbitrary bytes, and valid lines damaged in ways a parser must
//! survive. Structure-aware edits put an odd value (a huge number, a deep nest, control
//! characters, bidi marks, another field's value...) in place of one JSON value or add a key;
//! byte mutations then flip bits, insert tokens, delete, repeat or cut. Each input is rendered
//! to its bytes, so a failure shows the exact line to inline in a regression test.

use std::fmt;

use proptest::prelude::*;
use serde_json::Value;

/// One input line; its Debug is the text (lossy) and, when not UTF-8, the bytes in hex.
#[derive(Clone, PartialEq, Eq)]
pub struct Line(pub Vec<u8>);

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(text) => write!(f, "Line({text:?})"),
            Err(_) => {
                let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
                write!(f, "Line(hex {hex}, lossy {:?})", String::from_utf8_lossy(&self.0))
            }
        }
    }
}

/// JSON texts put in place of a value: odd types, limits, unicode a validator may trip on.
pub const ODD_VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1",
    "-1",
    "0.0",
    "1e999999",
    "-1e999999",
    "1e-999999",
    "123456789012345678901234567890123456789",
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "4294967296",
    "1.5",
    "[]",
    "{}",
    "[null]",
    "{\"a\":1}",
    "\"\"",
    "\" \"",
    "\"0\"",
    "\"-0.00\"",
    "\"0.001\"",
    "\"-5.00\"",
    "\"1e3\"",
    "\"+10.00\"",
    "\" 10.00\"",
    "\"10.00 \"",
    "\"10,00\"",
    "\"1_000.00\"",
    "\"NaN\"",
    "\"inf\"",
    "\"-inf\"",
    "\"0x10\"",
    "\"79228162514264337593543950335\"",
    "\"79228162514264337593543950336\"",
    "\"-79228162514264337593543950335\"",
    "\"0.0000000000000000000000000001\"",
    "\"99999999999999999999999999.99\"",
    "\"1000000000000.00\"",
    "\"999999999999.99\"",
    "\"١٢٣.٤٥\"",
    "\"１２３\"",
    "\"2026-02-29\"",
    "\"2026-02-30\"",
    "\"2026-13-01\"",
    "\"2026-00-10\"",
    "\"0000-01-01\"",
    "\"9999-12-31\"",
    "\"-2026-01-01\"",
    "\"+2026-01-01\"",
    "\"2026-1-1\"",
    "\"2026-11\"",
    "\"2026-00\"",
    "\"2026-13\"",
    "\"99999-01\"",
    "\"2026-11-01T25:00:00Z\"",
    "\"2026-11-01T09:00:00+99:00\"",
    "\"2026-11-01\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\udfff\\ud800\"",
    "\"a\\u0000b\"",
    "\"\\u202eevil\"",
    "\"\\u200b\"",
    "\"\\ufeff\"",
    "\"𝟙𝟘\"",
    "\"é\"",
    "\"e\\u0301\"",
    "\"\\n\"",
    "\"\\t\"",
    "\"M-1\"",
    "\"D-101\"",
    "\"P-1\"",
    "\"RUB\"",
    "\"rub\"",
    "\"USD\"",
    "\"prepayment\"",
    "\"postpayment\"",
    "\"manager\"",
    "\"client\"",
    "\"deal.created\"",
    "\"scheme.activated\"",
    "\"1.0\"",
    "\"1.00\"",
];

/// Tokens inserted between bytes: JSON punctuation, escapes and multi-byte characters.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\\",
    "\\u",
    "\\ud83d",
    "\\u0000",
    " ",
    "\n",
    "\r",
    "\t",
    "0",
    "-",
    "e9",
    ".",
    "null",
    "\"a\":1,",
    "\u{feff}",
    "\u{202e}",
    "\u{10ffff}",
    "é",
    "\u{0}",
    "ﬀ",
];

fn long_string(len: usize) -> String {
    format!("\"{}\"", "x".repeat(len))
}

/// A nest of `depth` arrays or objects around a number.
pub fn nest(depth: usize, objects: bool) -> String {
    let (open, close) = if objects { ("{\"k\":", "}") } else { ("[", "]") };
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// What to put in place of a value.
#[derive(Debug, Clone)]
pub enum Odd {
    Listed(usize),
    Nest {
        depth: usize,
        objects: bool,
    },
    Long(usize),
    /// The value found at another place of the same line.
    Other(usize),
    Text(String),
}

/// A structure-aware edit of a JSON line.
#[derive(Debug, Clone)]
pub enum Edit {
    Replace { at: usize, odd: Odd },
    Remove { at: usize },
    AddKey { at: usize, key: String, odd: Odd },
}

/// A byte-level mutation; positions wrap around the line's length.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, token: usize },
    Delete { at: usize, len: usize },
    Repeat { at: usize, len: usize },
    Cut { at: usize },
}

pub fn odd() -> impl Strategy<Value = Odd> {
    prop_oneof![
        6 => (0..ODD_VALUES.len()).prop_map(Odd::Listed),
        1 => (0usize..200, any::<bool>()).prop_map(|(depth, objects)| Odd::Nest { depth, objects }),
        1 => prop_oneof![0usize..300, Just(70_000usize)].prop_map(Odd::Long),
        2 => any::<usize>().prop_map(Odd::Other),
        1 => ".{0,12}".prop_map(Odd::Text),
    ]
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (any::<usize>(), odd()).prop_map(|(at, odd)| Edit::Replace { at, odd }),
        2 => any::<usize>().prop_map(|at| Edit::Remove { at }),
        2 => (any::<usize>(), prop_oneof!["[a-z_]{1,12}", Just("data".to_string()), Just("id".to_string())], odd())
            .prop_map(|(at, key, odd)| Edit::AddKey { at, key, odd }),
    ]
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..32).prop_map(|(at, len)| Mutation::Repeat { at, len }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
    ]
}

/// Every place of a JSON value, as JSON pointers (the root is "").
fn places(value: &Value, here: String, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                places(child, format!("{here}/{}", key.replace('~', "~0").replace('/', "~1")), into);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                places(child, format!("{here}/{i}"), into);
            }
        }
        _ => {}
    }
    into.push(here);
}

/// Marks the place of a replaced value so that the odd text can go in its stead verbatim.
const MARK: &str = "\u{1}premia-fuzz-mark\u{1}";

fn odd_text(odd: &Odd, value: &Value, all: &[String]) -> String {
    match odd {
        Odd::Listed(i) => ODD_VALUES[i % ODD_VALUES.len()].to_string(),
        Odd::Nest { depth, objects } => nest(*depth, *objects),
        Odd::Long(len) => long_string(*len),
        Odd::Other(i) => value.pointer(&all[i % all.len()]).map_or("null".into(), Value::to_string),
        Odd::Text(text) => Value::String(text.clone()).to_string(),
    }
}

/// Applies the structure-aware edits to a JSON text (left as it is if it is not JSON).
pub fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(text) else { return text.to_string() };
    let mut odd_texts = Vec::new();
    for edit in edits {
        let mut all = Vec::new();
        places(&value, String::new(), &mut all);
        let snapshot = value.clone();
        let mark = |odd: &Odd, texts: &mut Vec<String>| {
            texts.push(odd_text(odd, &snapshot, &all));
            Value::String(format!("{MARK}{}", texts.len() - 1))
        };
        match edit {
            Edit::Replace { at, odd } => {
                let place = &all[at % all.len()];
                let marked = mark(odd, &mut odd_texts);
                if let Some(slot) = value.pointer_mut(place) {
                    *slot = marked;
                }
            }
            Edit::Remove { at } => remove(&mut value, &all[at % all.len()]),
            Edit::AddKey { at, key, odd } => {
                let objects: Vec<&String> =
                    all.iter().filter(|p| snapshot.pointer(p).is_some_and(Value::is_object)).collect();
                if objects.is_empty() {
                    continue;
                }
                let place = objects[at % objects.len()].clone();
                let marked = mark(odd, &mut odd_texts);
                if let Some(Value::Object(map)) = value.pointer_mut(&place) {
                    map.insert(key.clone(), marked);
                }
            }
        }
    }
    let mut out = value.to_string();
    for (i, odd) in odd_texts.iter().enumerate().rev() {
        let marked = Value::String(format!("{MARK}{i}")).to_string();
        out = out.replace(&marked, odd);
    }
    out
}

fn remove(value: &mut Value, place: &str) {
    let Some((parent, last)) = place.rsplit_once('/') else { return };
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last.replace("~1", "/").replace("~0", "~"));
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        _ => {}
    }
}

/// Applies byte mutations.
pub fn apply_mutations(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let pos = |at: usize| if len == 0 { 0 } else { at % len };
        match *m {
            Mutation::Flip { at, bit } if len > 0 => bytes[pos(at)] ^= 1 << bit,
            Mutation::Set { at, byte } if len > 0 => bytes[pos(at)] = byte,
            Mutation::Insert { at, token } => {
                let at = if len == 0 { 0 } else { at % (len + 1) };
                bytes.splice(at..at, TOKENS[token % TOKENS.len()].bytes());
            }
            Mutation::Delete { at, len: n } if len > 0 => {
                let start = pos(at);
                bytes.drain(start..(start + n).min(len));
            }
            Mutation::Repeat { at, len: n } if len > 0 => {
                let start = pos(at);
                let piece = bytes[start..(start + n).min(len)].to_vec();
                bytes.splice(start..start, piece);
            }
            Mutation::Cut { at } => bytes.truncate(pos(at)),
            _ => {}
        }
    }
    bytes
}

/// Arbitrary bytes, mostly short, sometimes JSON-looking.
pub fn arbitrary_line() -> impl Strategy<Value = Line> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..256),
        2 => "\\PC{0,200}".prop_map(String::into_bytes),
        2 => "[{}\\[\\]\":,0-9a-z. \\\\-]{0,200}".prop_map(String::into_bytes),
        1 => (0usize..300, any::<bool>()).prop_map(|(d, o)| nest(d, o).into_bytes()),
    ]
    .prop_map(Line)
}

/// One of `lines` damaged by up to `edits` structure-aware edits and then up to `mutations`
/// byte mutations (none of either sometimes, so valid lines are offered too).
pub fn mutated_line(lines: &'static [&'static str], edits: usize, mutations: usize) -> impl Strategy<Value = Line> {
    (
        0..lines.len(),
        proptest::collection::vec(edit(), 0..=edits),
        prop_oneof![1 => Just(Vec::new()), 2 => proptest::collection::vec(mutation(), 1..=mutations.max(1))],
    )
        .prop_map(move |(i, edits, mutations)| {
            Line(apply_mutations(apply_edits(lines[i], &edits).into_bytes(), &mutations))
        })
}
