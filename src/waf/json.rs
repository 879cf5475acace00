//! A JSON body's fields, read in one pass without building the document: each string
//! by its pointer (borrowed from the body where it has no escapes), and each key as
//! its path (`/constructor/prototype` reads as one thing). Keys are read once per
//! shape: the same keys in each element of an array (`/items/0/sku`,
//! `/items/1/sku`, ...) are one field. Numbers, booleans and nulls carry no text an
//! upstream could run, and are not fields.
//!
//! Fails (and the body is inspected whole, see `fields::body`) where
//! `base::strict_json` refuses: not JSON, nested over 128 levels, trailing data, a key
//! twice in one object (parsers disagree on which value counts); and at more than
//! `limit` fields.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::{self, Write};

use super::fields::{Field, Place};

/// Pushes the fields of the JSON document `body` to `out`; `false` when it is not
/// strict JSON or has more than `limit` fields (what was pushed is left to the caller).
pub fn fields<'a>(body: &'a [u8], limit: usize, out: &mut Vec<Field<'a>>) -> bool {
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut walk = Walk {
        pointer: String::new(),
        shape: String::new(),
        shapes: BTreeSet::new(),
        limit: out.len() + limit,
        out,
    };
    Step(&mut walk).deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// Where the walk is, and what it found.
struct Walk<'w, 'a> {
    /// The JSON pointer of the value being read.
    pointer: String,
    /// `pointer` with array indices as `#`: what makes key paths repeat.
    shape: String,
    /// The key paths read already, by shape.
    shapes: BTreeSet<String>,
    limit: usize,
    out: &'w mut Vec<Field<'a>>,
}

impl<'a> Walk<'_, 'a> {
    fn push<E: de::Error>(&mut self, value: Cow<'a, [u8]>) -> Result<(), E> {
        if self.out.len() >= self.limit {
            return Err(E::custom("too many fields"));
        }
        self.out.push(Field {
            place: Place::Body,
            name: Cow::Owned(self.pointer.clone()),
            value,
        });
        Ok(())
    }
}

/// Reads one value at the walk's pointer.
struct Step<'s, 'w, 'a>(&'s mut Walk<'w, 'a>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for Step<'_, '_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for Step<'_, '_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.0.push(Cow::Borrowed(v.as_bytes()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push(Cow::Owned(v.as_bytes().to_vec()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.0.push(Cow::Owned(v.into_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let walk = self.0;
        let (len, shape_len) = (walk.pointer.len(), walk.shape.len());
        walk.shape.push_str("/#");
        for i in 0.. {
            // Writing to a String cannot fail.
            let _ = write!(walk.pointer, "/{i}");
            let more = seq.next_element_seed(Step(walk))?.is_some();
            walk.pointer.truncate(len);
            if !more {
                break;
            }
        }
        walk.shape.truncate(shape_len);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.0;
        let (len, shape_len) = (walk.pointer.len(), walk.shape.len());
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            // RFC 6901: `~` as `~0`, `/` as `~1`.
            let escaped = match key.contains(['~', '/']) {
                true => Cow::Owned(key.replace('~', "~0").replace('/', "~1")),
                false => Cow::Borrowed(&key[..]),
            };
            for path in [&mut walk.pointer, &mut walk.shape] {
                path.push('/');
                path.push_str(&escaped);
            }
            if !walk.shapes.contains(&walk.shape) {
                walk.shapes.insert(walk.shape.clone());
                let path = walk.pointer.clone().into_bytes();
                walk.push(Cow::Owned(path))?;
            }
            map.next_value_seed(Step(walk))?;
            walk.pointer.truncate(len);
            walk.shape.truncate(shape_len);
            keys.push(key);
        }
        // A key twice (escapes decoded): which value counts depends on the parser.
        keys.sort_unstable();
        match keys.windows(2).find(|pair| pair[0] == pair[1]) {
            Some(pair) => Err(de::Error::custom(format!("duplicate key {:?}", pair[0]))),
            None => Ok(()),
        }
    }
}

/// A key, borrowed from the body where it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        fields(body.as_bytes(), 100, &mut out).then(|| {
            out.iter()
                .map(|f| {
                    let value = String::from_utf8_lossy(&f.value).into_owned();
                    (f.name.to_string(), value)
                })
                .collect()
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn strings_and_keys_by_pointer_each_key_path_once() {
        let found =
            read(r#"{"a/b": [{"x": "1", "n": 2}, {"x": "\u0032", "y~": null}], "c": true}"#);
        let expected = pairs(&[
            ("/a~1b", "/a~1b"),
            ("/a~1b/0/x", "/a~1b/0/x"),
            ("/a~1b/0/x", "1"),
            ("/a~1b/0/n", "/a~1b/0/n"),
            ("/a~1b/1/x", "2"),
            ("/a~1b/1/y~0", "/a~1b/1/y~0"),
            ("/c", "/c"),
        ]);
        assert_eq!(found, Some(expected));
    }

    #[test]
    fn strict_where_parsers_disagree_and_bounded() {
        assert_eq!(
            read(r#"{"qty": "1", "q\u0074y": "-5"}"#),
            None,
            "a key twice"
        );
        assert_eq!(read(r#"{"a": {"b": 1, "b": 2}}"#), None, "nested");
        assert_eq!(read(r#"{} x"#), None, "trailing data");
        assert_eq!(read(&"[".repeat(200)), None, "too deep");
        let many: Vec<String> = (0..101).map(|i| format!("\"{i}\"")).collect();
        assert_eq!(
            read(&format!("[{}]", many.join(","))),
            None,
            "over the limit"
        );
        assert_eq!(read(r#"["top"]"#), Some(pairs(&[("/0", "top")])));
    }

    #[test]
    fn unescaped_strings_are_borrowed() {
        let mut out = Vec::new();
        assert!(fields(br#"{"a": "plain", "b": "esc\"aped"}"#, 10, &mut out));
        assert!(matches!(out[1].value, Cow::Borrowed(b"plain")));
        assert!(matches!(out[3].value, Cow::Owned(_)));
    }
}
