//! The firmware upgrader (`upgrader.*`): `prepare`, then `appendData` chunks whose params must
//! be exactly `{"length": N}` with N the binary trailer's length, then `execute`. It never
//! flashes anything: it only keeps the bytes so tests can compare them.

use serde::Serialize;
use serde_json::{Value, json};

use super::rpc::{Outcome, RpcError, RpcResult, as_u64};

/// Where an upgrade stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum UpgradeState {
    /// Nothing going on.
    #[default]
    Free,
    /// `prepare` done, data being received.
    Preparing,
    /// `execute` accepted (the simulator does not flash).
    Succeeded,
}

impl UpgradeState {
    fn name(self) -> &'static str {
        match self {
            UpgradeState::Free => "Free",
            UpgradeState::Preparing => "Preparing",
            UpgradeState::Succeeded => "Succeeded",
        }
    }
}

/// A copy of the upgrader's state for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpgraderSnapshot {
    /// The state.
    pub state: UpgradeState,
    /// The `Type` given to `prepare`.
    pub kind: Option<String>,
    /// Every byte appended since `prepare`.
    pub data: Vec<u8>,
    /// The length of each accepted chunk.
    pub chunks: Vec<usize>,
    /// How many times `execute` was accepted.
    pub executed: u32,
}

/// The upgrader.
#[derive(Clone, Debug, Default)]
pub struct Upgrader {
    s: UpgraderSnapshot,
}

impl Upgrader {
    /// Handles `upgrader.<method>` with the request's binary trailer.
    pub fn call(&mut self, method: &str, params: &Value, binary: &[u8]) -> Option<RpcResult> {
        Some(match method {
            "getState" => Ok(Outcome::params(json!({
                "State": self.s.state.name(),
                "Progress": if self.s.state == UpgradeState::Succeeded { 100 } else { 0 },
                "Received": self.s.data.len(),
            }))),
            "prepare" => {
                let kind = params
                    .get("Type")
                    .and_then(Value::as_str)
                    .unwrap_or("System");
                self.s = UpgraderSnapshot {
                    state: UpgradeState::Preparing,
                    kind: Some(kind.to_owned()),
                    executed: self.s.executed,
                    ..UpgraderSnapshot::default()
                };
                Ok(Outcome::ok())
            }
            "appendData" => self.append(params, binary),
            "execute" => {
                if self.s.state != UpgradeState::Preparing || self.s.data.is_empty() {
                    Err(RpcError::invalid_param())
                } else {
                    self.s.state = UpgradeState::Succeeded;
                    self.s.executed += 1;
                    Ok(Outcome::ok())
                }
            }
            "cancel" => {
                self.s.state = UpgradeState::Free;
                self.s.data.clear();
                self.s.chunks.clear();
                Ok(Outcome::ok())
            }
            _ => return None,
        })
    }

    fn append(&mut self, params: &Value, binary: &[u8]) -> RpcResult {
        if self.s.state != UpgradeState::Preparing {
            return Err(RpcError::invalid_param());
        }
        let exact = params
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.get("length"))
            .filter(|v| v.is_u64())
            .and_then(as_u64);
        match exact {
            Some(n) if n == binary.len() as u64 && n > 0 => {
                self.s.data.extend_from_slice(binary);
                self.s.chunks.push(binary.len());
                Ok(Outcome::ok())
            }
            _ => Err(RpcError::invalid_param()),
        }
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> UpgraderSnapshot {
        self.s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_data_needs_exactly_the_length_of_its_trailer() {
        let mut u = Upgrader::default();
        let append = |u: &mut Upgrader, p: Value, b: &[u8]| u.call("appendData", &p, b).unwrap();
        assert!(
            append(&mut u, json!({"length":4}), b"ABCD").is_err(),
            "before prepare"
        );
        u.call("prepare", &json!({"Type":"System"}), &[])
            .unwrap()
            .unwrap();
        assert!(append(&mut u, json!({"length":4}), b"ABCD").is_ok());
        assert!(append(&mut u, json!({"length":5}), b"ABCD").is_err());
        assert!(append(&mut u, json!({"length":4,"x":1}), b"ABCD").is_err());
        assert!(append(&mut u, json!({"length":"4"}), b"ABCD").is_err());
        assert!(append(&mut u, json!({"length":2}), b"EF").is_ok());
        u.call("execute", &json!({}), &[]).unwrap().unwrap();
        let s = u.snapshot();
        assert_eq!(s.data, b"ABCDEF");
        assert_eq!(s.chunks, vec![4, 2]);
        assert_eq!(s.state, UpgradeState::Succeeded);
    }
}
