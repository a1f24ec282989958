//! Strict JSON: one object per line, no duplicate keys, at most 64 levels deep, numbers kept as
//! their exact text. And the canonical form used to decide whether two copies of an event carry
//! the same content.

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

struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(de::Error::custom(DEPTH_MARK));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue { depth })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let Some(first_key) = access.next_key::<String>()? else {
            if self.depth + 1 > MAX_DEPTH {
                return Err(de::Error::custom(DEPTH_MARK));
            }
            return Ok(Value::Object(Map::new()));
        };
        if first_key == NUMBER_TOKEN {
            let text: String = access.next_value()?;
            return text.parse::<Number>().map(Value::Number).map_err(de::Error::custom);
        }
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(de::Error::custom(DEPTH_MARK));
        }
        let mut map = Map::new();
        let first_value = access.next_value_seed(StrictValue { depth })?;
        map.insert(first_key, first_value);
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE_MARK}{key}")));
            }
            let value = access.next_value_seed(StrictValue { depth })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Parses one line into a JSON object, enforcing RULES.md section 10's structural limits.
pub fn parse_object(raw: &[u8]) -> Result<Map<String, Value>, Rejection> {
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
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Rejection::new(
            Reason::NotAnObject,
            format!("the line is a JSON {}, but an event must be one JSON object (a CloudEvent in structured mode)", kind_of(&other)),
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
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A 128-bit digest of an event's content (`type` and `data`), equal for equal JSON values:
/// members in any order, numbers equal in value (`1.50` and `1.5`, `1e3` and `1000`).
pub fn content_fingerprint(event_type: &str, data: &Value) -> u128 {
    let mut out = Vec::with_capacity(256);
    write_canonical(&mut out, &Value::String(event_type.to_owned()));
    write_canonical(&mut out, data);
    let digest = Sha256::digest(&out);
    u128::from_be_bytes(digest[..16].try_into().unwrap_or([0; 16]))
}

/// A 128-bit digest of the idempotency key (`source`, `id`).
pub fn identity_key(source: &str, id: &str) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update((source.len() as u64).to_be_bytes());
    hasher.update(source.as_bytes());
    hasher.update(id.as_bytes());
    let digest = hasher.finalize();
    u128::from_be_bytes(digest[..16].try_into().unwrap_or([0; 16]))
}

fn write_canonical(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(b'n'),
        Value::Bool(true) => out.push(b't'),
        Value::Bool(false) => out.push(b'f'),
        Value::Number(n) => {
            out.push(b'#');
            out.extend_from_slice(canonical_number(&n.to_string()).as_bytes());
            out.push(b';');
        }
        Value::String(s) => {
            out.push(b's');
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            out.push(b'[');
            for item in items {
                write_canonical(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for key in keys {
                out.extend_from_slice(&(key.len() as u64).to_be_bytes());
                out.extend_from_slice(key.as_bytes());
                write_canonical(out, &map[key]);
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
        let map = parse_object(b"{\"n\":1234567890123456789012345678901234567890.25}").unwrap();
        assert_eq!(map["n"].to_string(), "1234567890123456789012345678901234567890.25");
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
        let fp = |m: &Map<String, Value>, t: &str| content_fingerprint(t, &m["x"]);
        assert_eq!(fp(&a, "deal.created"), fp(&b, "deal.created"));
        assert_ne!(fp(&a, "deal.created"), fp(&c, "deal.created"));
        assert_ne!(fp(&a, "deal.created"), fp(&d, "deal.created"));
        assert_ne!(fp(&a, "deal.created"), fp(&a, "payment.received"));
        assert_ne!(identity_key("ab", "c"), identity_key("a", "bc"));
    }
}
