//! What a method handler returns: a result value with optional params, or an RPC error, plus
//! the side effects the network layer must carry out (close, reboot, subscriptions).

use serde_json::{Map, Value, json};

/// An RPC error as the device reports it: `{"code": …, "message": …}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    /// The error code.
    pub code: i64,
    /// The message (absent on some firmware).
    pub message: Option<String>,
    /// Extra `params` sent beside the error (e.g. `remainLoginTimes`).
    pub params: Option<Value>,
}

impl RpcError {
    /// An error with a message.
    pub fn new(code: i64, message: &str) -> Self {
        RpcError {
            code,
            message: Some(message.to_owned()),
            params: None,
        }
    }

    /// The same error with `params`.
    pub fn with_params(mut self, params: Value) -> Self {
        self.params = Some(params);
        self
    }

    /// `Request invalid param!`.
    pub fn invalid_param() -> Self {
        RpcError::new(codes::INVALID_PARAM, "Request invalid param!")
    }

    /// `Invalid session in request data!`.
    pub fn invalid_session() -> Self {
        RpcError::new(codes::INVALID_SESSION, "Invalid session in request data!")
    }

    /// The request needs an `object` it does not carry (or one that does not exist).
    pub fn no_object() -> Self {
        RpcError::new(codes::INVALID_REQUEST, "Component pointer failed!")
    }

    /// Firmware's catch-all.
    pub fn unknown() -> Self {
        RpcError::new(
            codes::UNKNOWN_ERROR,
            "Unknown error! error code was not set in service!",
        )
    }

    /// No data (e.g. a file search without results).
    pub fn no_data() -> Self {
        RpcError::new(codes::NO_DATA, "No data!")
    }

    /// `Authority:check failure.`.
    pub fn no_authority() -> Self {
        RpcError::new(codes::AUTHORITY, "Authority:check failure.")
    }

    /// The JSON `error` object.
    pub fn to_json(&self) -> Value {
        let mut e = Map::new();
        e.insert("code".into(), json!(self.code));
        if let Some(m) = &self.message {
            e.insert("message".into(), json!(m));
        }
        Value::Object(e)
    }
}

/// Error codes the simulator sends (see §2.5 of the protocol notes).
pub mod codes {
    /// Login challenge (expected stage-1 answer).
    pub const LOGIN_CHALLENGE: i64 = 268_632_079;
    /// Account locked after too many failures.
    pub const ACCOUNT_LOCKED: i64 = 268_632_081;
    /// Wrong user name or password.
    pub const BAD_CREDENTIALS: i64 = 268_632_085;
    /// Request could not be parsed.
    pub const PARSE_ERROR: i64 = 268_894_208;
    /// Invalid request / component pointer failed (`object` missing).
    pub const INVALID_REQUEST: i64 = 268_894_209;
    /// Method not found (firmware style).
    pub const METHOD_NOT_FOUND: i64 = 268_894_210;
    /// Request invalid param.
    pub const INVALID_PARAM: i64 = 268_894_211;
    /// Unknown error (not set in service).
    pub const UNKNOWN_ERROR: i64 = 268_959_743;
    /// Authority check failure.
    pub const AUTHORITY: i64 = 285_278_249;
    /// No data (empty search); also "account does not exist".
    pub const NO_DATA: i64 = 285_409_284;
    /// Account already exists.
    pub const ACCOUNT_EXISTS: i64 = 285_409_285;
    /// Group does not exist.
    pub const NO_GROUP: i64 = 285_409_296;
    /// Invalid session.
    pub const INVALID_SESSION: i64 = 287_637_505;
    /// python-dhip's fake-server "Method not allowed".
    pub const METHOD_NOT_ALLOWED: i64 = 405;
}

/// Something the network layer must do after sending a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Close this connection.
    Close,
    /// Drop every connection and come back after the reboot delay.
    Reboot,
    /// Drop every connection and stay down until restarted.
    Shutdown,
}

/// A handler's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// `result` (true, false, an object id, a time string…).
    pub result: Value,
    /// `params`, if any.
    pub params: Option<Value>,
    /// The error, when the call failed.
    pub error: Option<RpcError>,
    /// What to do after the reply goes out.
    pub effects: Vec<Effect>,
    /// Leave `session` out of the reply (python-dhip's fake does that on 405).
    pub omit_session: bool,
}

impl Outcome {
    /// `result: true` without params.
    pub fn ok() -> Self {
        Outcome::result(Value::Bool(true))
    }

    /// `result: true` with params.
    pub fn params(params: Value) -> Self {
        Outcome {
            params: Some(params),
            ..Outcome::ok()
        }
    }

    /// A bare result value (object id, bool, time string).
    pub fn result(result: Value) -> Self {
        Outcome {
            result,
            params: None,
            error: None,
            effects: Vec::new(),
            omit_session: false,
        }
    }

    /// `result: false` with the error (and its params).
    pub fn error(e: RpcError) -> Self {
        Outcome {
            result: Value::Bool(false),
            params: e.params.clone(),
            error: Some(e),
            effects: Vec::new(),
            omit_session: false,
        }
    }

    /// The same outcome with an effect.
    pub fn then(mut self, effect: Effect) -> Self {
        self.effects.push(effect);
        self
    }

    /// The reply object for request `id` (session `session` unless omitted).
    pub fn to_json(&self, id: &Value, session: Option<Value>) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), id.clone());
        m.insert("result".into(), self.result.clone());
        if let Some(p) = &self.params {
            m.insert("params".into(), p.clone());
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), e.to_json());
        }
        if let (Some(s), false) = (session, self.omit_session) {
            m.insert("session".into(), s);
        }
        Value::Object(m)
    }
}

impl From<RpcError> for Outcome {
    fn from(e: RpcError) -> Self {
        Outcome::error(e)
    }
}

/// A handler result: `Err` becomes a `result:false` reply.
pub type RpcResult = Result<Outcome, RpcError>;

/// A required unsigned integer parameter.
pub fn param_u64(params: &Value, key: &str) -> Result<u64, RpcError> {
    params
        .get(key)
        .and_then(as_u64)
        .ok_or_else(RpcError::invalid_param)
}

/// A number sent as an integer, a float with no fraction, or a decimal string.
pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A number sent as an integer, a float or a decimal string.
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// A required string parameter.
pub fn param_str<'a>(params: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(RpcError::invalid_param)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_outcome_keeps_its_params_and_session() {
        let e =
            RpcError::new(codes::BAD_CREDENTIALS, "x").with_params(json!({"remainLoginTimes": 2}));
        let v = Outcome::error(e).to_json(&json!(5), Some(json!(7)));
        assert_eq!(
            v,
            json!({"id":5,"result":false,"error":{"code":268632085,"message":"x"},
                   "params":{"remainLoginTimes":2},"session":7})
        );
    }

    #[test]
    fn numbers_may_come_as_strings_or_floats() {
        assert_eq!(as_u64(&json!("12")), Some(12));
        assert_eq!(as_u64(&json!(3.0)), Some(3));
        assert_eq!(as_u64(&json!(3.5)), None);
        assert_eq!(as_u64(&json!(-1)), None);
    }
}
