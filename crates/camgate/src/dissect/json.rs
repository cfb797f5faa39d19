//! `Obj`: a JSON object that keeps its keys in insertion order, so that every dissected
//! message reads `type` first and then its fields in wire order.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// A JSON object with ordered keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Obj(Vec<(String, Node)>);

/// A value inside an `Obj`.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A scalar (or any unordered JSON value).
    Value(Value),
    /// A nested ordered object.
    Obj(Obj),
    /// A list.
    List(Vec<Node>),
}

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Obj(Vec::new())
    }

    /// The object with `key` appended (or replaced in place if present).
    pub fn with(mut self, key: &str, value: impl Into<Node>) -> Self {
        self.set(key, value);
        self
    }

    /// The object with `key` appended when `value` is `Some`.
    pub fn with_opt<T: Into<Node>>(self, key: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// Sets `key` (appended, or replaced in place if present).
    pub fn set(&mut self, key: &str, value: impl Into<Node>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The object with `fields` in front of its own (for capture context: frame, time, peers).
    pub fn prefixed(self, fields: &Obj) -> Obj {
        fields.clone().extended(self)
    }

    /// The object with the fields of `other` appended (replacing equal keys in place).
    pub fn extended(mut self, other: Obj) -> Obj {
        for (k, v) in other.0 {
            self.set(&k, v);
        }
        self
    }

    /// The object as a `serde_json::Value` (keys then sorted by serde_json).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for Obj {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Value(v) => v.serialize(s),
            Node::Obj(o) => o.serialize(s),
            Node::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
        }
    }
}

impl From<Obj> for Node {
    fn from(o: Obj) -> Self {
        Node::Obj(o)
    }
}

impl From<Value> for Node {
    fn from(v: Value) -> Self {
        Node::Value(v)
    }
}

impl From<Vec<Obj>> for Node {
    fn from(v: Vec<Obj>) -> Self {
        Node::List(v.into_iter().map(Node::Obj).collect())
    }
}

impl From<Vec<Node>> for Node {
    fn from(v: Vec<Node>) -> Self {
        Node::List(v)
    }
}

macro_rules! scalar_nodes {
    ($($t:ty),*) => {$(
        impl From<$t> for Node {
            fn from(v: $t) -> Self {
                Node::Value(Value::from(v))
            }
        }
    )*};
}

scalar_nodes!(
    bool,
    u8,
    u16,
    u32,
    u64,
    usize,
    i32,
    i64,
    f64,
    String,
    &str,
    Vec<String>,
    Vec<u32>
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_insertion_order() {
        let o = Obj::new()
            .with("type", "request")
            .with("b", 1u8)
            .with("a", Obj::new().with("z", true).with("y", "x"));
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"type":"request","b":1,"a":{"z":true,"y":"x"}}"#
        );
    }

    #[test]
    fn prefix_goes_first_and_set_replaces_in_place() {
        let ctx = Obj::new().with("frame", 3u64);
        let mut o = Obj::new().with("type", "rtp").with("x", 1u8);
        o.set("x", 2u8);
        assert_eq!(
            serde_json::to_string(&o.prefixed(&ctx)).unwrap(),
            r#"{"frame":3,"type":"rtp","x":2}"#
        );
    }
}
