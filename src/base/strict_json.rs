//! JSON parsed the strict way, for validation and the WAF: an object with the same key twice is
//! refused. JSON parsers disagree on `{"qty": 1, "qty": -5}` (serde_json and most
//! keep the last value, some the first, some stream both), so a schema check of one
//! reading says nothing about what the upstream acts on. Otherwise as `serde_json`
//! (UTF-8, nesting bounded at 128 levels, trailing data refused).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// `body` as a JSON value, or why it is not one.
pub fn parse(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(Strict)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_however_they_are_spelled() {
        assert!(parse(br#"{"qty":1,"qty":-5}"#).is_err());
        assert!(
            parse(br#"{"qty":1,"q\u0074y":-5}"#).is_err(),
            "escapes decode first"
        );
        assert!(parse(br#"{"a":{"b":1,"b":2}}"#).is_err(), "nested too");
        let ok = parse(br#"{"a":[1,2.5,"x",null,true,{"b":1}],"c":{}}"#).expect("valid");
        assert_eq!(
            ok,
            serde_json::json!({"a":[1,2.5,"x",null,true,{"b":1}],"c":{}})
        );
        assert!(parse(b"{} x").is_err(), "trailing data");
    }
}
