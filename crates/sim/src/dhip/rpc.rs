//! What a method handler returns: a result value with optional params, or an RPC error, plus
//! the side effects the network layer must carry out (close, reboot, subscriptions).

/// Error codes the simulator sends (see §2.5 of the protocol notes).
pub use dhip::codes;
/// A number sent as an integer, a float with no fraction, or a decimal string.
pub use dhip::envelope::as_u64_lenient as as_u64;
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
        RpcError::new(codes::OBJECT_MISSING, "Component pointer failed!")
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
        RpcError::new(codes::AUTHORITY_CHECK, "Authority:check failure.")
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

/// A number sent as an integer, a float or a decimal string.
pub fn as_f64(v: &Value) -> Option<f64> {
    dhip::envelope::as_f64_lenient(v).filter(|f| f.is_finite())
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
            RpcError::new(codes::WRONG_PASSWORD, "x").with_params(json!({"remainLoginTimes": 2}));
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
