//! Strict JSON: one object per line, no duplicate keys, at most 64 levels deep, numbers kept as
//! their exact text. And the canonical form used to decide whether two copies of an event carry
//! the same content.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use crate::reject::{Reason, Rejection};

/// The deepest nesting of objects and arrays a line may have (the top object is level 1).
pub const MAX_DEPTH: usize = 64;
/// The longest line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// With `arbitrary_precision`, serde_json hands a number to a visitor as a one-entry map under
/// this key, with the number's text as the value. serde_json's own `Value` relies on the same.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";
const DUPLICATE_MARK: &str = "premia-duplicate-key:";
const DEPTH_MARK: &str = "premia-too-deep";

/// A parsed JSON value that borrows from the input line wherever it can: objects keep their
/// members in order (so duplicate keys are caught while parsing), numbers keep their exact text.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Cow<'a, str>),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// A non-negative whole number written without fraction or exponent.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (numbers stay exact).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(text) => text.parse::<Number>().map(Value::Number).unwrap_or(Value::Null),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(members) => Value::Object(
                members.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect::<Map<String, Value>>(),
            ),
        }
    }
}

struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Json<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// A key or string, borrowed from the input when it has no escapes.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        // Unreachable with `arbitrary_precision`, which hands numbers over as text.
        Err(E::custom(format!("the number {v} would lose precision")))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(de::Error::custom(DEPTH_MARK));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue { depth })? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Json<'de>, A::Error> {
        let Some(first_key) = access.next_key_seed(Text)? else {
            if self.depth + 1 > MAX_DEPTH {
                return Err(de::Error::custom(DEPTH_MARK));
            }
            return Ok(Json::Object(Vec::new()));
        };
        if first_key == NUMBER_TOKEN {
            let text: String = access.next_value()?;
            return Ok(Json::Number(Cow::Owned(text)));
        }
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(de::Error::custom(DEPTH_MARK));
        }
        let mut members = Vec::with_capacity(10);
        let first_value = access.next_value_seed(StrictValue { depth })?;
        members.push((first_key, first_value));
        while let Some(key) = access.next_key_seed(Text)? {
            if members.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("{DUPLICATE_MARK}{key}")));
            }
            let value = access.next_value_seed(StrictValue { depth })?;
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

/// Parses one line into a JSON object, enforcing RULES.md section 10's structural limits.
pub fn parse_object(raw: &[u8]) -> Result<Json<'_>, Rejection> {
    if raw.len() > MAX_LINE_BYTES {
        return Err(Rejection::new(
            Reason::LineTooLong,
            format!("the line is {} bytes long; an event may be at most {MAX_LINE_BYTES} bytes (1 MiB)", raw.len()),
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|e| {
        Rejection::new(
            Reason::InvalidUtf8,
            format!("the line is not valid UTF-8 (bad byte at offset {}); send events as UTF-8 JSON", e.valid_up_to()),
        )
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue { depth: 0 }.deserialize(&mut deserializer).and_then(|v| {
        deserializer.end()?;
        Ok(v)
    });
    match value {
        Ok(object @ Json::Object(_)) => Ok(object),
        Ok(other) => Err(Rejection::new(
            Reason::NotAnObject,
            format!(
                "the line is a JSON {}, but an event must be one JSON object (a CloudEvent in structured mode)",
                kind_of(&other)
            ),
        )),
        Err(e) => Err(classify_error(&e)),
    }
}

fn classify_error(e: &serde_json::Error) -> Rejection {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix(DUPLICATE_MARK) {
        let key = rest.rsplit_once(" at line ").map_or(rest, |(k, _)| k);
        return Rejection::new(
            Reason::DuplicateKey,
            format!("the key {key:?} appears twice in one object; each key may appear once"),
        );
    }
    if text.starts_with(DEPTH_MARK) || text.starts_with("recursion limit exceeded") {
        return Rejection::new(
            Reason::NestingTooDeep,
            format!("objects and arrays are nested deeper than {MAX_DEPTH} levels"),
        );
    }
    Rejection::new(Reason::InvalidJson, format!("the line is not valid JSON: {text}"))
}

/// A word for a JSON value's type, for messages.
pub fn kind_of(value: &Json<'_>) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A 128-bit digest of an event's content (`type` and `data`), equal for equal JSON values:
/// members in any order, numbers equal in value (`1.50` and `1.5`, `1e3` and `1000`).
pub fn content_fingerprint(event_type: &str, data: &Json<'_>) -> u128 {
    let mut out = Vec::with_capacity(512);
    write_canonical(&mut out, &Json::String(Cow::Borrowed(event_type)));
    write_canonical(&mut out, data);
    first_128_bits(&Sha256::digest(&out))
}

/// A 128-bit digest of the idempotency key (`source`, `id`).
pub fn identity_key(source: &str, id: &str) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update((source.len() as u64).to_be_bytes());
    hasher.update(source.as_bytes());
    hasher.update(id.as_bytes());
    first_128_bits(&hasher.finalize())
}

/// The first 128 bits of a SHA-256 digest, big-endian.
fn first_128_bits(digest: &[u8]) -> u128 {
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

fn write_canonical(out: &mut Vec<u8>, value: &Json<'_>) {
    match value {
        Json::Null => out.push(b'n'),
        Json::Bool(true) => out.push(b't'),
        Json::Bool(false) => out.push(b'f'),
        Json::Number(n) => {
            out.push(b'#');
            out.extend_from_slice(canonical_number(n).as_bytes());
            out.push(b';');
        }
        Json::String(s) => {
            out.push(b's');
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Json::Array(items) => {
            out.push(b'[');
            for item in items {
                write_canonical(out, item);
            }
            out.push(b']');
        }
        Json::Object(members) => {
            let mut sorted: Vec<&(Cow<'_, str>, Json<'_>)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push(b'{');
            for (key, value) in sorted {
                out.extend_from_slice(&(key.len() as u64).to_be_bytes());
                out.extend_from_slice(key.as_bytes());
                write_canonical(out, value);
            }
            out.push(b'}');
        }
    }
}

/// A number's value as text that is equal exactly when the values are: `-12.3400e+2` -> `-1234e0`.
fn canonical_number(text: &str) -> String {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exponent_text) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, "0"),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let Ok(exponent) = exponent_text.trim_start_matches('+').parse::<i64>() else {
        // An exponent beyond i64 is astronomically large or small: keep the text as written.
        return text.to_owned();
    };
    let mut digits: String = format!("{int_part}{frac_part}");
    let mut exponent = exponent - frac_part.len() as i64;
    let trimmed_len = digits.trim_end_matches('0').len();
    exponent += (digits.len() - trimmed_len) as i64;
    digits.truncate(trimmed_len);
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return "0".to_owned();
    }
    format!("{}{digits}e{exponent}", if negative { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(raw: &[u8]) -> Reason {
        parse_object(raw).unwrap_err().reason
    }

    #[test]
    fn structural_rejections() {
        assert_eq!(reason(b"[1,2]"), Reason::NotAnObject);
        assert_eq!(reason(b"\"hi\""), Reason::NotAnObject);
        assert_eq!(reason(b"{\"a\":1}{"), Reason::InvalidJson);
        assert_eq!(reason(b"{\"a\":1,}"), Reason::InvalidJson);
        assert_eq!(reason(b"\xff\xfe{}"), Reason::InvalidUtf8);
        assert_eq!(reason(b"{\"a\":1,\"b\":{\"c\":1,\"c\":2}}"), Reason::DuplicateKey);
        assert!(parse_object(b"{\"a\":1,\"b\":{\"c\":1,\"d\":2}}").is_ok());
        let long = vec![b' '; MAX_LINE_BYTES + 1];
        assert_eq!(reason(&long), Reason::LineTooLong);
    }

    #[test]
    fn depth_limit_is_64() {
        let nested = |levels: usize| {
            let mut s = String::from("{\"a\":");
            for _ in 1..levels {
                s.push('[');
            }
            s.push('1');
            for _ in 1..levels {
                s.push(']');
            }
            s.push('}');
            s
        };
        assert!(parse_object(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(reason(nested(MAX_DEPTH + 1).as_bytes()), Reason::NestingTooDeep);
        assert_eq!(reason(nested(100_000).as_bytes()), Reason::NestingTooDeep);
        let deep_objects = "{\"a\":".repeat(65) + "1" + &"}".repeat(65);
        assert_eq!(reason(deep_objects.as_bytes()), Reason::NestingTooDeep);
        let deep_empty = "{\"a\":".repeat(64) + "{}" + &"}".repeat(64);
        assert_eq!(reason(deep_empty.as_bytes()), Reason::NestingTooDeep);
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        let object = parse_object(b"{\"n\":1234567890123456789012345678901234567890.25}").unwrap();
        assert_eq!(object.get("n"), Some(&Json::Number("1234567890123456789012345678901234567890.25".into())));
    }

    #[test]
    fn canonical_numbers() {
        assert_eq!(canonical_number("1.50"), canonical_number("1.5"));
        assert_eq!(canonical_number("1e3"), canonical_number("1000"));
        assert_eq!(canonical_number("-12.3400e+2"), "-1234e0");
        assert_eq!(canonical_number("0.000"), "0");
        assert_eq!(canonical_number("-0"), "0");
        assert_ne!(canonical_number("1.5"), canonical_number("15"));
        assert_eq!(canonical_number("100"), "1e2");
    }

    #[test]
    fn fingerprint_ignores_member_order_and_number_form() {
        let a = parse_object(br#"{"x":{"a":"1","b":1.50,"c":[1,2]}}"#).unwrap();
        let b = parse_object(br#"{"x":{"c":[1,2],"b":1.5,"a":"1"}}"#).unwrap();
        let c = parse_object(br#"{"x":{"c":[2,1],"b":1.5,"a":"1"}}"#).unwrap();
        let d = parse_object(br#"{"x":{"c":[1,2],"b":"1.5","a":"1"}}"#).unwrap();
        let fp = |m: &Json<'_>, t: &str| content_fingerprint(t, m.get("x").unwrap());
        assert_eq!(fp(&a, "deal.created"), fp(&b, "deal.created"));
        assert_ne!(fp(&a, "deal.created"), fp(&c, "deal.created"));
        assert_ne!(fp(&a, "deal.created"), fp(&d, "deal.created"));
        assert_ne!(fp(&a, "deal.created"), fp(&a, "payment.received"));
        assert_ne!(identity_key("ab", "c"), identity_key("a", "bc"));
    }
}
