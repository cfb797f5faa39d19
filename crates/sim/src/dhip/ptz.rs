//! One PTZ head: position (kept in degrees, reported in raw units 0–8191 or in degrees per
//! the status-key policy), continuous and targeted moves that advance with the simulator
//! clock, presets, tours and the home position. Pan wraps at 360°, tilt spans 0–90° (0 is
//! level, 90 straight down), zoom is a fraction 0–1 of the lens range.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::rpc::{Outcome, RpcError, RpcResult, as_f64, as_u64};

/// Raw units per full scale (pan 360°, tilt 90°, zoom 1.0).
pub const RAW_FULL_SCALE: f64 = 8192.0;
/// Highest preset index.
pub const MAX_PRESET: u64 = 255;
/// Pan/tilt speed per speed step (speeds 1..=8), degrees per second.
const DEG_PER_SPEED_STEP: f64 = 7.5;
/// Zoom travel per speed step, fraction per second.
const ZOOM_PER_SPEED_STEP: f64 = 0.05;
/// Speed of targeted moves (presets, absolute, home), degrees per second.
const TARGET_SPEED: f64 = 90.0;
/// Zoom speed of targeted moves, fraction per second.
const TARGET_ZOOM_SPEED: f64 = 0.5;

/// Which key `getStatus` puts the position under (firmware-dependent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusKey {
    /// `Location: [pan, tilt, zoom]` in raw units 0–8191 (python-dhip).
    #[default]
    Location,
    /// `Postion` (sic): `[pan°, tilt°, zoom]` floats (ipcmanview).
    Postion,
}

/// PTZ quirks a simulated firmware has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtzPolicy {
    /// Where `getStatus` reports the position.
    pub status_key: StatusKey,
    /// Preset/tour numbers are also read from `arg1` (rroller's RPC2 form) when `arg2` is 0;
    /// off: only `arg2` counts and an index in `arg1` alone is refused.
    pub preset_arg1: bool,
    /// `getPresets` answers `presets: null` rather than `[]` when none are set.
    pub empty_presets_null: bool,
}

impl Default for PtzPolicy {
    fn default() -> Self {
        PtzPolicy {
            status_key: StatusKey::Location,
            preset_arg1: false,
            empty_presets_null: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Motion {
    /// Degrees (zoom: fraction) per second on each axis.
    Velocity([f64; 3]),
    /// Heading for a position.
    Target([f64; 3]),
}

/// A copy of a PTZ head's state for tests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PtzSnapshot {
    /// Pan in degrees, 0 ≤ pan < 360.
    pub pan: f64,
    /// Tilt in degrees, 0–90.
    pub tilt: f64,
    /// Zoom, 0–1.
    pub zoom: f64,
    /// Position in raw units `[pan, tilt, zoom]` (0–8191).
    pub raw: [u32; 3],
    /// Whether a move (or a tour) is under way.
    pub moving: bool,
    /// Set presets: index → (name, `[pan°, tilt°, zoom]`).
    pub presets: BTreeMap<u32, (String, [f64; 3])>,
    /// The running tour, if any.
    pub tour: Option<u32>,
    /// The last `start` code (`Left`, `ZoomTele`, `GotoPreset`…).
    pub last_code: Option<String>,
}

/// One PTZ head; see the module documentation.
#[derive(Clone, Debug)]
pub struct Ptz {
    pos: [f64; 3],
    motion: Option<Motion>,
    updated: Duration,
    presets: BTreeMap<u32, (String, [f64; 3])>,
    home: [f64; 3],
    tour: Option<u32>,
    last_code: Option<String>,
}

impl Default for Ptz {
    fn default() -> Self {
        Ptz {
            pos: [0.0; 3],
            motion: None,
            updated: Duration::ZERO,
            presets: BTreeMap::new(),
            home: [0.0; 3],
            tour: None,
            last_code: None,
        }
    }
}

fn wrap_pan(p: f64) -> f64 {
    let w = p.rem_euclid(360.0);
    if w >= 360.0 { 0.0 } else { w }
}

fn clamp_pos(p: [f64; 3]) -> [f64; 3] {
    [wrap_pan(p[0]), p[1].clamp(0.0, 90.0), p[2].clamp(0.0, 1.0)]
}

fn raw(v: f64, full: f64) -> u32 {
    ((v / full * RAW_FULL_SCALE).round() as i64).clamp(0, RAW_FULL_SCALE as i64 - 1) as u32
}

/// Shortest signed pan distance from `a` to `b`.
fn pan_delta(a: f64, b: f64) -> f64 {
    let d = (b - a).rem_euclid(360.0);
    if d > 180.0 { d - 360.0 } else { d }
}

fn arg(params: &Value, key: &str) -> u64 {
    params.get(key).and_then(as_u64).unwrap_or(0)
}

fn speed(params: &Value) -> f64 {
    let s = arg(params, "arg2");
    let s = if s == 0 { arg(params, "arg1") } else { s };
    s.clamp(1, 8) as f64
}

impl Ptz {
    /// Brings position and motion up to `now`.
    pub fn update(&mut self, now: Duration) {
        let dt = now.saturating_sub(self.updated).as_secs_f64();
        self.updated = now;
        match self.motion {
            Some(Motion::Velocity(v)) => {
                self.pos = clamp_pos([
                    self.pos[0] + v[0] * dt,
                    self.pos[1] + v[1] * dt,
                    self.pos[2] + v[2] * dt,
                ]);
            }
            Some(Motion::Target(t)) => {
                let step = |from: f64, delta: f64, rate: f64| {
                    let max = rate * dt;
                    from + delta.clamp(-max, max)
                };
                let dp = pan_delta(self.pos[0], t[0]);
                self.pos = clamp_pos([
                    step(self.pos[0], dp, TARGET_SPEED),
                    step(self.pos[1], t[1] - self.pos[1], TARGET_SPEED),
                    step(self.pos[2], t[2] - self.pos[2], TARGET_ZOOM_SPEED),
                ]);
                let arrived = pan_delta(self.pos[0], t[0]).abs() < 1e-9
                    && (self.pos[1] - t[1]).abs() < 1e-9
                    && (self.pos[2] - t[2]).abs() < 1e-9;
                if arrived {
                    self.pos = t;
                    self.motion = None;
                }
            }
            None => {}
        }
    }

    fn moving(&self) -> bool {
        match self.motion {
            Some(Motion::Velocity(v)) => v.iter().any(|x| *x != 0.0),
            Some(Motion::Target(_)) => true,
            None => self.tour.is_some(),
        }
    }

    fn go(&mut self, target: [f64; 3]) {
        self.motion = Some(Motion::Target(clamp_pos(target)));
    }

    fn index(&self, params: &Value, policy: &PtzPolicy) -> Result<u32, RpcError> {
        let mut i = arg(params, "arg2");
        if i == 0 && policy.preset_arg1 {
            i = arg(params, "arg1");
        }
        if i == 0 || i > MAX_PRESET {
            return Err(RpcError::invalid_param());
        }
        Ok(i as u32)
    }

    fn start(&mut self, params: &Value, policy: &PtzPolicy) -> RpcResult {
        let code = params
            .get("code")
            .and_then(Value::as_str)
            .ok_or_else(RpcError::invalid_param)?;
        let s = speed(params);
        let pt = s * DEG_PER_SPEED_STEP;
        let z = s * ZOOM_PER_SPEED_STEP;
        let velocity = match code {
            "Up" => Some([0.0, -pt, 0.0]),
            "Down" => Some([0.0, pt, 0.0]),
            "Left" => Some([-pt, 0.0, 0.0]),
            "Right" => Some([pt, 0.0, 0.0]),
            "LeftUp" => Some([-pt, -pt, 0.0]),
            "LeftDown" => Some([-pt, pt, 0.0]),
            "RightUp" => Some([pt, -pt, 0.0]),
            "RightDown" => Some([pt, pt, 0.0]),
            "ZoomTele" => Some([0.0, 0.0, z]),
            "ZoomWide" => Some([0.0, 0.0, -z]),
            _ => None,
        };
        if let Some(v) = velocity {
            self.tour = None;
            self.motion = Some(Motion::Velocity(v));
        } else {
            match code {
                "FocusNear" | "FocusFar" | "IrisLarge" | "IrisSmall" | "AutoScanOn"
                | "AutoScanOff" | "SetLeftLimit" | "SetRightLimit" | "AutoPanOn" | "AutoPanOff"
                | "StartPattern" | "StopPattern" | "SetPatternBegin" | "SetPatternEnd" => {}
                "SetPreset" => {
                    let i = self.index(params, policy)?;
                    self.presets.insert(i, (format!("Preset{i}"), self.pos));
                }
                "GotoPreset" => {
                    let i = self.index(params, policy)?;
                    let p = self
                        .presets
                        .get(&i)
                        .map(|(_, p)| *p)
                        .ok_or_else(RpcError::invalid_param)?;
                    self.tour = None;
                    self.go(p);
                }
                "ClearPreset" => {
                    let i = self.index(params, policy)?;
                    self.presets
                        .remove(&i)
                        .ok_or_else(RpcError::invalid_param)?;
                }
                "StartTour" => {
                    let i = self.index(params, policy)?;
                    self.motion = None;
                    self.tour = Some(i);
                }
                "StopTour" => self.tour = None,
                "GotoHome" => self.go(self.home),
                "PositionABS" => {
                    let p = [
                        arg(params, "arg1") as f64,
                        arg(params, "arg2") as f64,
                        arg(params, "arg3") as f64,
                    ];
                    self.absolute(p)?;
                }
                _ => return Err(RpcError::invalid_param()),
            }
        }
        self.last_code = Some(code.to_owned());
        Ok(Outcome::ok())
    }

    fn absolute(&mut self, p: [f64; 3]) -> Result<(), RpcError> {
        if !(0.0..360.0).contains(&p[0]) {
            return Err(RpcError::invalid_param());
        }
        self.tour = None;
        self.go(p);
        Ok(())
    }

    fn position(params: &Value) -> Result<[f64; 3], RpcError> {
        let a = params
            .get("Position")
            .and_then(Value::as_array)
            .filter(|a| (2..=3).contains(&a.len()))
            .ok_or_else(RpcError::invalid_param)?;
        let mut p = [0.0; 3];
        for (slot, v) in p.iter_mut().zip(a) {
            *slot = as_f64(v).ok_or_else(RpcError::invalid_param)?;
        }
        Ok(p)
    }

    fn status(&self, policy: &PtzPolicy) -> Value {
        let moving = self.moving();
        let (key, pos) = match policy.status_key {
            StatusKey::Location => (
                "Location",
                json!([
                    raw(self.pos[0], 360.0),
                    raw(self.pos[1], 90.0),
                    raw(self.pos[2], 1.0)
                ]),
            ),
            StatusKey::Postion => ("Postion", json!(self.pos)),
        };
        let mut s = json!({
            "Action": if moving { "Move" } else { "Idle" },
            "MoveStatus": if moving { "Moving" } else { "Idle" },
            "PanTiltStatus": "Normal",
            "ZoomStatus": "Normal",
            "ZoomValue": raw(self.pos[2], 1.0),
            "TaskName": if self.tour.is_some() { "Tour" } else { "" },
            "PresetID": 0,
        });
        s[key] = pos;
        s
    }

    /// Handles `ptz.<method>` (the channel already chosen) at clock time `now`.
    pub fn call(
        &mut self,
        method: &str,
        params: &Value,
        now: Duration,
        policy: &PtzPolicy,
    ) -> Option<RpcResult> {
        self.update(now);
        Some(match method {
            "start" => self.start(params, policy),
            "stop" => {
                if matches!(self.motion, Some(Motion::Velocity(_))) {
                    self.motion = None;
                }
                Ok(Outcome::ok())
            }
            "moveAbsolutely" => {
                Self::position(params).and_then(|p| self.absolute(p).map(|()| Outcome::ok()))
            }
            "moveRelatively" => Self::position(params).map(|d| {
                self.tour = None;
                self.go([self.pos[0] + d[0], self.pos[1] + d[1], self.pos[2] + d[2]]);
                Outcome::ok()
            }),
            "moveContinuously" => {
                let axis = |k: &str, i: usize| {
                    params
                        .get(k)
                        .or_else(|| params.get("Speed").and_then(|s| s.get(i)))
                        .and_then(as_f64)
                        .unwrap_or(0.0)
                        .clamp(-1.0, 1.0)
                };
                let v = [
                    axis("x", 0) * TARGET_SPEED,
                    -axis("y", 1) * TARGET_SPEED,
                    axis("z", 2) * TARGET_ZOOM_SPEED,
                ];
                self.tour = None;
                self.motion = Some(Motion::Velocity(v));
                Ok(Outcome::ok())
            }
            "stopMove" => {
                self.motion = None;
                Ok(Outcome::ok())
            }
            "gotoHomePosition" => {
                self.go(self.home);
                Ok(Outcome::ok())
            }
            "setHomePosition" => {
                self.home = self.pos;
                Ok(Outcome::ok())
            }
            "reset" => {
                self.motion = None;
                self.tour = None;
                self.go(self.home);
                Ok(Outcome::ok())
            }
            "getStatus" => Ok(Outcome::params(json!({"status": self.status(policy)}))),
            "isMoving" => Ok(Outcome::result(Value::Bool(self.moving()))),
            "getPresets" => {
                let list: Vec<Value> = self
                    .presets
                    .iter()
                    .map(|(i, (n, _))| json!({"Index": i, "Name": n}))
                    .collect();
                let presets = if list.is_empty() && policy.empty_presets_null {
                    Value::Null
                } else {
                    Value::Array(list)
                };
                Ok(Outcome::params(json!({"presets": presets})))
            }
            "getTours" => Ok(Outcome::params(json!({"tours": []}))),
            "getPatterns" => Ok(Outcome::params(json!({"patterns": []}))),
            "getCurrentProtocolCaps" | "getCaps" => Ok(Outcome::params(json!({"caps": {
                "PanSpeedMin": 1, "PanSpeedMax": 8, "TiltSpeedMin": 1, "TiltSpeedMax": 8,
                "PresetMin": 1, "PresetMax": MAX_PRESET, "TourMin": 1, "TourMax": 8,
                "Pan": true, "Tile": true, "Zoom": true, "Focus": true, "Iris": true,
                "Preset": true, "Tour": true, "Pattern": false, "AbsolutePanTiltZoom": true,
                "PtzMotionRange": {"HorizontalAngle": [0, 360], "VerticalAngle": [0, 90]}
            }}))),
            _ => return None,
        })
    }

    /// A copy of the state at `now`.
    pub fn snapshot(&mut self, now: Duration) -> PtzSnapshot {
        self.update(now);
        PtzSnapshot {
            pan: self.pos[0],
            tilt: self.pos[1],
            zoom: self.pos[2],
            raw: [
                raw(self.pos[0], 360.0),
                raw(self.pos[1], 90.0),
                raw(self.pos[2], 1.0),
            ],
            moving: self.moving(),
            presets: self.presets.clone(),
            tour: self.tour,
            last_code: self.last_code.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn call(p: &mut Ptz, m: &str, params: Value, now: f64) -> Outcome {
        p.call(m, &params, s(now), &PtzPolicy::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_continuous_move_advances_with_the_clock_until_stopped() {
        let mut p = Ptz::default();
        call(
            &mut p,
            "start",
            json!({"code":"Right","arg1":0,"arg2":8,"arg3":0}),
            0.0,
        );
        assert_eq!(call(&mut p, "isMoving", json!({}), 1.0).result, json!(true));
        call(&mut p, "stop", json!({"code":"Right"}), 2.0);
        let snap = p.snapshot(s(10.0));
        assert!((snap.pan - 120.0).abs() < 1e-6, "{snap:?}");
        assert!(!snap.moving);
    }

    #[test]
    fn left_wraps_below_zero() {
        let mut p = Ptz::default();
        call(&mut p, "start", json!({"code":"Left","arg2":4}), 0.0);
        assert!((p.snapshot(s(1.0)).pan - 330.0).abs() < 1e-6);
    }

    #[test]
    fn absolute_moves_in_degrees_take_time_and_reject_pan_360() {
        let mut p = Ptz::default();
        call(
            &mut p,
            "moveAbsolutely",
            json!({"Position":[180, 45, 0.5]}),
            0.0,
        );
        assert!(p.snapshot(s(0.5)).moving);
        let snap = p.snapshot(s(3.0));
        assert_eq!(snap.raw, [4096, 4096, 4096]);
        assert!(!snap.moving);
        let r = p.call(
            "moveAbsolutely",
            &json!({"Position":[360, 0, 0]}),
            s(3.0),
            &PtzPolicy::default(),
        );
        assert!(r.unwrap().is_err());
    }

    #[test]
    fn presets_use_arg2_unless_arg1_is_allowed() {
        let mut p = Ptz::default();
        call(
            &mut p,
            "moveAbsolutely",
            json!({"Position":[90, 10, 0]}),
            0.0,
        );
        call(
            &mut p,
            "start",
            json!({"code":"SetPreset","arg1":0,"arg2":3}),
            5.0,
        );
        call(&mut p, "moveAbsolutely", json!({"Position":[0, 0, 0]}), 5.0);
        call(&mut p, "start", json!({"code":"GotoPreset","arg2":3}), 10.0);
        assert!((p.snapshot(s(20.0)).pan - 90.0).abs() < 1e-9);
        let arg1 = json!({"code":"GotoPreset","arg1":3,"arg2":0});
        assert!(
            p.call("start", &arg1, s(20.0), &PtzPolicy::default())
                .unwrap()
                .is_err()
        );
        let lenient = PtzPolicy {
            preset_arg1: true,
            ..PtzPolicy::default()
        };
        assert!(p.call("start", &arg1, s(20.0), &lenient).unwrap().is_ok());
        let missing = json!({"code":"GotoPreset","arg2":9});
        assert!(
            p.call("start", &missing, s(20.0), &PtzPolicy::default())
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn status_key_and_empty_presets_follow_the_policy() {
        let mut p = Ptz::default();
        let st = call(&mut p, "getStatus", json!({}), 0.0).params.unwrap();
        assert_eq!(st["status"]["Location"], json!([0, 0, 0]));
        let pol = PtzPolicy {
            status_key: StatusKey::Postion,
            empty_presets_null: false,
            ..PtzPolicy::default()
        };
        let st = p
            .call("getStatus", &json!({}), s(0.0), &pol)
            .unwrap()
            .unwrap();
        assert!(st.params.unwrap()["status"].get("Postion").is_some());
        let pr = call(&mut p, "getPresets", json!({}), 0.0).params.unwrap();
        assert_eq!(pr["presets"], Value::Null);
        let pr = p
            .call("getPresets", &json!({}), s(0.0), &pol)
            .unwrap()
            .unwrap();
        assert_eq!(pr.params.unwrap()["presets"], json!([]));
    }
}
