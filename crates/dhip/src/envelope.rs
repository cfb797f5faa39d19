//! The JSON-RPC envelope shared by DHIP and HTTP RPC2: requests, responses, server pushes,
//! with the response-shape quirks of real firmware smoothed over (`result` that is a bool, an
//! object id or a time string; `params` that is a dict, a bare list or `null`; numbers that
//! arrive as floats; session numbers that are strings over HTTP; a missing error message).

use std::fmt;

use serde_json::{Map, Value};

use crate::EnvelopeError;

/// A session id: a number over DHIP, a number or a string over HTTP RPC2.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionId {
    /// Numeric session.
    Int(u64),
    /// String session (modern HTTP firmware: 32 hex characters).
    Str(String),
}

impl SessionId {
    /// Reads a session from JSON (number, float with no fraction, or string).
    pub fn from_json(v: &Value) -> Option<SessionId> {
        match v {
            Value::String(s) => Some(SessionId::Str(s.clone())),
            v => as_u64_lenient(v).map(SessionId::Int),
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        match self {
            SessionId::Int(n) => Value::from(*n),
            SessionId::Str(s) => Value::from(s.clone()),
        }
    }

    /// The number for the DHIP header (0 for a string session).
    pub fn header_value(&self) -> u32 {
        match self {
            SessionId::Int(n) => *n as u32,
            SessionId::Str(_) => 0,
        }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionId::Int(n) => write!(f, "{n}"),
            SessionId::Str(s) => f.write_str(s),
        }
    }
}

/// A number that may arrive as an integer, a float with no fraction, or a numeric string.
pub fn as_u64_lenient(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A signed number that may arrive as an integer, a float or a numeric string.
pub fn as_i64_lenient(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= i64::MAX as f64)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A float that may arrive as a number or a numeric string.
pub fn as_f64_lenient(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An excerpt of JSON text for error messages.
pub(crate) fn excerpt(b: &[u8]) -> String {
    const MAX: usize = 160;
    let s = String::from_utf8_lossy(&b[..b.len().min(MAX)]).into_owned();
    if b.len() > MAX { s + "…" } else { s }
}

fn parse_object(json: &[u8]) -> Result<Map<String, Value>, EnvelopeError> {
    let text = crate::frame::trim_json(json);
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(EnvelopeError::NotAnObject {
            excerpt: excerpt(text),
        }),
        Err(e) => Err(EnvelopeError::Json {
            reason: e.to_string(),
            excerpt: excerpt(text),
        }),
    }
}

/// A request (or, from a client, a notification-free call).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Method name, e.g. `magicBox.getSystemInfo`.
    pub method: String,
    /// Parameters (`{}` when none; `null` is accepted from peers).
    pub params: Value,
    /// Request id.
    pub id: u64,
    /// Session, once logged in.
    pub session: Option<SessionId>,
    /// Instance id from `*.factory.instance`/`*.factory.create`.
    pub object: Option<u64>,
    /// Other top-level keys (`magic`, `seq`, ...), kept as they came.
    pub extra: Map<String, Value>,
}

impl Request {
    /// A request with `params` and no session or object.
    pub fn new(method: impl Into<String>, params: Value, id: u64) -> Request {
        Request {
            method: method.into(),
            params,
            id,
            session: None,
            object: None,
            extra: Map::new(),
        }
    }

    /// Compact JSON with the keys in the order clients send them (`method`, `params`, `id`,
    /// `session`, `object`, then the rest).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        let field = |out: &mut Vec<u8>, k: &str, v: &Value| {
            out.push(if out.is_empty() { b'{' } else { b',' });
            out.extend_from_slice(Value::from(k).to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(v.to_string().as_bytes());
        };
        field(&mut out, "method", &Value::from(self.method.clone()));
        field(&mut out, "params", &self.params);
        field(&mut out, "id", &Value::from(self.id));
        if let Some(s) = &self.session {
            field(&mut out, "session", &s.to_json());
        }
        if let Some(o) = self.object {
            field(&mut out, "object", &Value::from(o));
        }
        for (k, v) in &self.extra {
            if !matches!(
                k.as_str(),
                "method" | "params" | "id" | "session" | "object"
            ) {
                field(&mut out, k, v);
            }
        }
        out.push(b'}');
        out
    }

    /// Parses a request as a device does: `params` may be missing or `null` (kept as `null`),
    /// `id` may be a float, unknown top-level keys are kept in `extra`.
    pub fn from_json(json: &[u8]) -> Result<Request, EnvelopeError> {
        let mut m = parse_object(json)?;
        let method = match m.remove("method") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(EnvelopeError::Missing {
                    field: "method",
                    excerpt: excerpt(json),
                });
            }
        };
        let params = m.remove("params").unwrap_or(Value::Null);
        let id = m
            .remove("id")
            .as_ref()
            .and_then(as_u64_lenient)
            .unwrap_or(0);
        let session = m.remove("session").as_ref().and_then(SessionId::from_json);
        let object = m.remove("object").as_ref().and_then(as_u64_lenient);
        Ok(Request {
            method,
            params,
            id,
            session,
            object,
            extra: m,
        })
    }
}

/// The `error` member of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    /// Error code (see [`crate::codes`]).
    pub code: i64,
    /// The device's message, when it sent one.
    pub message: Option<String>,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "error {} ({m})", self.code),
            None => write!(
                f,
                "error {} ({})",
                self.code,
                crate::codes::describe(self.code)
            ),
        }
    }
}

/// A response to a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// Request id echoed by the device (`None` if it sent none).
    pub id: Option<u64>,
    /// Session, when present.
    pub session: Option<SessionId>,
    /// `result`: a bool, an object id, a time string... `Null` when absent.
    pub result: Value,
    /// `params`: a dict, a bare list or `Null`.
    pub params: Value,
    /// `error`, when present.
    pub error: Option<RpcError>,
}

impl Response {
    /// True if `result` is truthy: `true`, a non-zero number, a non-empty string, an object.
    pub fn is_success(&self) -> bool {
        truthy(&self.result)
    }

    /// The useful part of the response: `params` if it is a non-empty object or list; else
    /// `result` if it is neither a bool nor null (a time string, an object id); else `params`
    /// if not null (`{}` or `[]`); else `result`.
    pub fn extract(&self) -> Value {
        match &self.params {
            Value::Object(m) if !m.is_empty() => return self.params.clone(),
            Value::Array(a) if !a.is_empty() => return self.params.clone(),
            _ => {}
        }
        if !matches!(self.result, Value::Bool(_) | Value::Null) {
            return self.result.clone();
        }
        if !self.params.is_null() {
            return self.params.clone();
        }
        self.result.clone()
    }

    /// A response from a JSON object already parsed.
    fn from_map(mut m: Map<String, Value>) -> Response {
        let error = match m.remove("error") {
            Some(Value::Object(e)) => Some(RpcError {
                code: e.get("code").and_then(as_i64_lenient).unwrap_or(0),
                message: e.get("message").and_then(|v| v.as_str()).map(str::to_owned),
            }),
            _ => None,
        };
        Response {
            id: m.get("id").and_then(as_u64_lenient),
            session: m.get("session").and_then(SessionId::from_json),
            result: m.remove("result").unwrap_or(Value::Null),
            params: m.remove("params").unwrap_or(Value::Null),
            error,
        }
    }

    /// Parses a response.
    pub fn from_json(json: &[u8]) -> Result<Response, EnvelopeError> {
        Ok(Response::from_map(parse_object(json)?))
    }

    /// The response as a JSON value, keys in the order real devices send them.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        if let Some(e) = &self.error {
            let mut em = Map::new();
            em.insert("code".into(), Value::from(e.code));
            if let Some(msg) = &e.message {
                em.insert("message".into(), Value::from(msg.clone()));
            }
            m.insert("error".into(), Value::Object(em));
        }
        if let Some(id) = self.id {
            m.insert("id".into(), Value::from(id));
        }
        if !self.params.is_null() || self.error.is_none() {
            m.insert("params".into(), self.params.clone());
        }
        m.insert("result".into(), self.result.clone());
        if let Some(s) = &self.session {
            m.insert("session".into(), s.to_json());
        }
        Value::Object(m)
    }

    /// The response as JSON text in `style`.
    pub fn to_json(&self, style: JsonStyle) -> Vec<u8> {
        style.render(&self.to_value())
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A message the device pushes (`client.notifyEventStream`, `client.notifyConfigChange`...).
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Method, e.g. `client.notifyEventStream`.
    pub method: String,
    /// Parameters.
    pub params: Value,
    /// The id of the subscribing request (`eventManager.attach`'s).
    pub id: Option<u64>,
    /// Session, when present.
    pub session: Option<SessionId>,
    /// `callback`, sent by some firmware.
    pub callback: Option<u64>,
}

impl Notification {
    /// The notification as a JSON value (`id`, `method`, `params`, `session`).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        if let Some(id) = self.id {
            m.insert("id".into(), Value::from(id));
        }
        m.insert("method".into(), Value::from(self.method.clone()));
        m.insert("params".into(), self.params.clone());
        if let Some(s) = &self.session {
            m.insert("session".into(), s.to_json());
        }
        if let Some(c) = self.callback {
            m.insert("callback".into(), Value::from(c));
        }
        Value::Object(m)
    }
}

/// What a client reads: a response, or a push.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// A response to one of our requests.
    Response(Response),
    /// A server push (it has a `method`).
    Notification(Notification),
}

impl Incoming {
    /// Parses what a device sent: a JSON object with a `method` is a push, anything else a
    /// response.
    pub fn from_json(json: &[u8]) -> Result<Incoming, EnvelopeError> {
        let mut m = parse_object(json)?;
        if let Some(Value::String(method)) = m.remove("method") {
            return Ok(Incoming::Notification(Notification {
                method,
                params: m.remove("params").unwrap_or(Value::Null),
                id: m.get("id").and_then(as_u64_lenient),
                session: m.get("session").and_then(SessionId::from_json),
                callback: m.get("callback").and_then(as_u64_lenient),
            }));
        }
        Ok(Incoming::Response(Response::from_map(m)))
    }
}

/// How JSON text is laid out (devices differ; both are accepted everywhere).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JsonStyle {
    /// `{"id":18,"result":false}` (python-dhip, VTO firmware).
    #[default]
    Compact,
    /// `{ "id": 18, "result": false }` (access controllers).
    Spaced,
}

impl JsonStyle {
    /// Renders `v` in this style.
    pub fn render(self, v: &Value) -> Vec<u8> {
        match self {
            JsonStyle::Compact => serde_json::to_vec(v).unwrap_or_default(),
            JsonStyle::Spaced => {
                let mut s = String::new();
                spaced(v, &mut s);
                s.into_bytes()
            }
        }
    }
}

fn spaced(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str("{ ");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::from(k.clone()).to_string());
                out.push_str(": ");
                spaced(v, out);
            }
            out.push_str(" }");
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[ ");
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                spaced(v, out);
            }
            out.push_str(" ]");
        }
        v => out.push_str(&v.to_string()),
    }
}
