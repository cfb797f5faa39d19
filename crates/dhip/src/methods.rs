//! Typed methods over [`Client`]: device information, time, configuration, users, PTZ,
//! recorded-file search, firmware upgrade, service listing and multicall, with the
//! firmware differences smoothed over (time in `result` or in `params.time`, `vendor` or
//! `Vendor`, PTZ status under `Location` or `Postion`, preset index in `arg1` or `arg2`,
//! PTZ with or without a `ptz.factory.instance` object).

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::client::{Call, Client, Error};
use crate::codes;
use crate::envelope::{as_f64_lenient, as_u64_lenient};

/// Where PTZ calls put the preset index (firmware differs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PresetArg {
    /// `arg2` (python-dhip, CGI).
    #[default]
    Arg2,
    /// `arg1` (some RPC2 firmware).
    Arg1,
}

/// How PTZ calls address the channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PtzAddressing {
    /// `channel` in params, no object (python-dhip).
    #[default]
    ChannelParam,
    /// `ptz.factory.instance {channel}` first, then `object` on every call.
    Instance,
}

/// PTZ policy of a device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PtzPolicy {
    /// Preset argument placement.
    pub preset_arg: PresetArg,
    /// Channel addressing.
    pub addressing: PtzAddressing,
    /// Raw units of a full pan turn (8192 on most domes).
    pub pan_fullscale: f64,
    /// Degrees the raw tilt range spans over `pan_fullscale` units (90).
    pub tilt_span: f64,
}

impl Default for PtzPolicy {
    fn default() -> Self {
        PtzPolicy {
            preset_arg: PresetArg::Arg2,
            addressing: PtzAddressing::ChannelParam,
            pan_fullscale: 8192.0,
            tilt_span: 90.0,
        }
    }
}

/// A PTZ position as the device reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PtzStatus {
    /// Raw pan units (`Location[0]` or `Postion[0]`).
    pub pan_raw: Option<f64>,
    /// Raw tilt units.
    pub tilt_raw: Option<f64>,
    /// Raw zoom, when given.
    pub zoom_raw: Option<f64>,
    /// Pan in degrees (raw × 360 / fullscale).
    pub pan_deg: Option<f64>,
    /// Tilt in degrees (raw × tilt span / fullscale).
    pub tilt_deg: Option<f64>,
    /// `MoveStatus`/`Action`, when given.
    pub moving: Option<String>,
    /// The whole `status` object.
    pub raw: Value,
}

/// A file found by [`Client::find_files`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileInfo {
    /// `FilePath` (download with RPC_Loadfile).
    pub path: String,
    /// `Channel`.
    pub channel: Option<u64>,
    /// `StartTime`.
    pub start: Option<String>,
    /// `EndTime`.
    pub end: Option<String>,
    /// `Length` in bytes.
    pub length: Option<u64>,
    /// `Type` (`dav`, `jpg`).
    pub kind: Option<String>,
    /// The whole record.
    pub raw: Value,
}

/// Directions and lens moves for `ptz.start`/`ptz.stop`.
pub const PTZ_CODES: [&str; 14] = [
    "Up",
    "Down",
    "Left",
    "Right",
    "LeftUp",
    "LeftDown",
    "RightUp",
    "RightDown",
    "ZoomTele",
    "ZoomWide",
    "FocusNear",
    "FocusFar",
    "IrisLarge",
    "IrisSmall",
];

/// Firmware upload chunk size.
pub const UPGRADE_CHUNK: usize = 0x8000;

fn str_of(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| v.get(*k)).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

impl Client {
    fn unexpected(&self, method: &str, reply: &Value) -> Error {
        Error::Unexpected {
            peer: self.peer(),
            method: method.to_string(),
            reply: reply.to_string(),
        }
    }

    /// Calls a parameterless getter and reads a string (or number) under one of `keys`.
    async fn text(&self, method: &str, keys: &[&str]) -> Result<String, Error> {
        let v = self.call(method, json!({})).await?;
        str_of(&v, keys).ok_or_else(|| self.unexpected(method, &v))
    }

    /// `magicBox.getSystemInfo`: device type, serial number, hardware version...
    pub async fn system_info(&self) -> Result<Value, Error> {
        self.call("magicBox.getSystemInfo", json!({})).await
    }

    /// `magicBox.getDeviceType`.
    pub async fn device_type(&self) -> Result<String, Error> {
        self.text("magicBox.getDeviceType", &["type"]).await
    }

    /// `magicBox.getSerialNo`.
    pub async fn serial_number(&self) -> Result<String, Error> {
        self.text("magicBox.getSerialNo", &["sn"]).await
    }

    /// `magicBox.getSoftwareVersion` (`version` object).
    pub async fn software_version(&self) -> Result<Value, Error> {
        let v = self.call("magicBox.getSoftwareVersion", json!({})).await?;
        Ok(v.get("version").cloned().unwrap_or(v))
    }

    /// `magicBox.getHardwareVersion`.
    pub async fn hardware_version(&self) -> Result<String, Error> {
        self.text("magicBox.getHardwareVersion", &["version"]).await
    }

    /// `magicBox.getVendor` (`vendor` or `Vendor`).
    pub async fn vendor(&self) -> Result<String, Error> {
        self.text("magicBox.getVendor", &["vendor", "Vendor"]).await
    }

    /// `magicBox.getMachineName`.
    pub async fn machine_name(&self) -> Result<String, Error> {
        self.text("magicBox.getMachineName", &["name"]).await
    }

    /// `magicBox.getMemoryInfo` (`free`, `total`; numbers may be floats).
    pub async fn memory_info(&self) -> Result<Value, Error> {
        self.call("magicBox.getMemoryInfo", json!({})).await
    }

    /// The summary `camgate dhip info` prints: system info plus type, serial, versions,
    /// vendor and name (each missing method is left out).
    pub async fn info(&self) -> Result<Value, Error> {
        let mut out = Map::new();
        let sys = self.system_info().await?;
        out.insert("systemInfo".into(), sys);
        if let Ok(t) = self.device_type().await {
            out.insert("deviceType".into(), t.into());
        }
        if let Ok(s) = self.serial_number().await {
            out.insert("serialNumber".into(), s.into());
        }
        if let Ok(v) = self.software_version().await {
            out.insert("softwareVersion".into(), v);
        }
        if let Ok(v) = self.hardware_version().await {
            out.insert("hardwareVersion".into(), v.into());
        }
        if let Ok(v) = self.vendor().await {
            out.insert("vendor".into(), v.into());
        }
        if let Ok(v) = self.machine_name().await {
            out.insert("machineName".into(), v.into());
        }
        Ok(Value::Object(out))
    }

    /// `magicBox.reboot`; the device drops the connection afterwards.
    pub async fn reboot(&self) -> Result<(), Error> {
        self.call("magicBox.reboot", json!({})).await?;
        self.disconnect().await;
        Ok(())
    }

    /// `magicBox.shutdown`; the device drops the connection afterwards.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.call("magicBox.shutdown", json!({})).await?;
        self.disconnect().await;
        Ok(())
    }

    /// `magicBox.getDeviceClass` (IPC, NVR, VTO, VTH, HCVR...).
    pub async fn device_class(&self) -> Result<String, Error> {
        self.text("magicBox.getDeviceClass", &["type"]).await
    }

    /// `global.getCurrentTime` (`YYYY-MM-DD HH:MM:SS`, from `result` or `params.time`).
    pub async fn current_time(&self) -> Result<String, Error> {
        let v = self.call("global.getCurrentTime", json!({})).await?;
        match &v {
            Value::String(s) => Ok(s.clone()),
            v => str_of(v, &["time"]).ok_or_else(|| self.unexpected("global.getCurrentTime", v)),
        }
    }

    /// `global.setCurrentTime` to `time` (`YYYY-MM-DD HH:MM:SS`).
    pub async fn set_current_time(&self, time: &str) -> Result<(), Error> {
        check_time(time)?;
        self.call(
            "global.setCurrentTime",
            json!({"time": time, "tolerance": 5}),
        )
        .await
        .map(|_| ())
    }

    /// `configManager.getConfig {name}` → the `table` (a dict, or a list per channel).
    pub async fn get_config(&self, name: &str) -> Result<Value, Error> {
        let v = self
            .call("configManager.getConfig", json!({"name": name}))
            .await?;
        Ok(v.get("table").cloned().unwrap_or(v))
    }

    /// `configManager.setConfig {name, table}`: writes the whole table.
    pub async fn set_config(&self, name: &str, table: &Value) -> Result<(), Error> {
        self.call(
            "configManager.setConfig",
            json!({"name": name, "table": table, "options": []}),
        )
        .await
        .map(|_| ())
    }

    /// `configManager.getDefault {name}` → the factory `table`.
    pub async fn default_config(&self, name: &str) -> Result<Value, Error> {
        let v = self
            .call("configManager.getDefault", json!({"name": name}))
            .await?;
        Ok(v.get("table").cloned().unwrap_or(v))
    }

    /// `configManager.restore {names}`: factory settings for the named sections.
    pub async fn restore_config(&self, names: &[&str]) -> Result<(), Error> {
        self.call("configManager.restore", json!({"names": names}))
            .await
            .map(|_| ())
    }

    /// Reads `name`, merges `patch` into it (objects key by key, per-channel lists element
    /// by element) and writes the result back; returns what was written.
    pub async fn patch_config(&self, name: &str, patch: &Value) -> Result<Value, Error> {
        let mut table = self.get_config(name).await?;
        merge(&mut table, patch);
        self.set_config(name, &table).await?;
        Ok(table)
    }

    /// `userManager.getUserInfoAll` → the user list.
    pub async fn users(&self) -> Result<Vec<Value>, Error> {
        let v = self.call("userManager.getUserInfoAll", json!({})).await?;
        list_of(&v, "users")
    }

    /// `userManager.getGroupInfoAll` → the group list (a bare list on most firmware).
    pub async fn groups(&self) -> Result<Vec<Value>, Error> {
        let v = self.call("userManager.getGroupInfoAll", json!({})).await?;
        list_of(&v, "group")
    }

    /// `userManager.getActiveUserInfoAll` → who is logged in.
    pub async fn active_users(&self) -> Result<Vec<Value>, Error> {
        let v = self
            .call("userManager.getActiveUserInfoAll", json!({}))
            .await?;
        list_of(&v, "users")
    }

    /// `userManager.addUser` with `Name`, `Password`, `Group`, `Memo`.
    pub async fn add_user(
        &self,
        name: &str,
        password: &str,
        group: &str,
        memo: &str,
    ) -> Result<(), Error> {
        let user = json!({"Name": name, "Password": password, "Group": group, "Memo": memo,
            "Sharable": true, "AuthorityList": []});
        self.call("userManager.addUser", json!({"user": user}))
            .await
            .map(|_| ())
    }

    /// `userManager.modifyUser`: the user's current record merged with `changes`.
    pub async fn modify_user(&self, name: &str, changes: &Value) -> Result<Value, Error> {
        let users = self.users().await?;
        let mut user = users
            .into_iter()
            .find(|u| u.get("Name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| Error::Rpc {
                peer: self.peer(),
                method: "userManager.modifyUser".into(),
                code: codes::NO_DATA,
                message: Some(format!("no user named {name}")),
            })?;
        merge(&mut user, changes);
        self.call(
            "userManager.modifyUser",
            json!({"name": name, "user": user}),
        )
        .await?;
        Ok(user)
    }

    /// `userManager.deleteUser {name}`.
    pub async fn delete_user(&self, name: &str) -> Result<(), Error> {
        self.call("userManager.deleteUser", json!({"name": name}))
            .await
            .map(|_| ())
    }

    /// `userManager.modifyPassword`.
    pub async fn modify_password(&self, name: &str, old: &str, new: &str) -> Result<(), Error> {
        self.call(
            "userManager.modifyPassword",
            json!({"name": name, "oldPassword": old, "password": new}),
        )
        .await
        .map(|_| ())
    }

    /// A PTZ call on `channel` following `policy` (object or channel in params).
    pub async fn ptz_call(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        method: &str,
        mut params: Value,
    ) -> Result<crate::envelope::Response, Error> {
        let mut call = Call::new(&format!("ptz.{method}"), Value::Null);
        match policy.addressing {
            PtzAddressing::ChannelParam => {
                if let Value::Object(m) = &mut params {
                    m.insert("channel".into(), channel.into());
                }
            }
            PtzAddressing::Instance => {
                let v = self
                    .call("ptz.factory.instance", json!({"channel": channel}))
                    .await?;
                let object = as_u64_lenient(&v)
                    .ok_or_else(|| self.unexpected("ptz.factory.instance", &v))?;
                call.object = Some(object);
                if let Value::Object(m) = &mut params {
                    m.insert("channel".into(), channel.into());
                }
            }
        }
        call.params = params;
        Ok(self.request_raw(&call).await?.0)
    }

    async fn ptz_ok(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        method: &str,
        params: Value,
    ) -> Result<(), Error> {
        let r = self.ptz_call(policy, channel, method, params).await?;
        self.check(&format!("ptz.{method}"), &r)
    }

    /// `ptz.start` with `code` (a direction, zoom, focus, iris...) and arguments.
    pub async fn ptz_start(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        code: &str,
        args: [i64; 3],
    ) -> Result<(), Error> {
        self.ptz_ok(
            policy,
            channel,
            "start",
            json!({"code": code, "arg1": args[0], "arg2": args[1], "arg3": args[2]}),
        )
        .await
    }

    /// `ptz.stop` for `code`.
    pub async fn ptz_stop(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        code: &str,
    ) -> Result<(), Error> {
        // A benign `false` from stop (nothing was moving) is not an error.
        self.ptz_call(
            policy,
            channel,
            "stop",
            json!({"code": code, "arg1": 0, "arg2": 0, "arg3": 0}),
        )
        .await
        .map(|_| ())
    }

    /// Moves in `code`'s direction at `speed` (1–8) for `duration`, then stops.
    pub async fn ptz_move(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        code: &str,
        speed: i64,
        duration: Duration,
    ) -> Result<(), Error> {
        if !PTZ_CODES.contains(&code) {
            return Err(Error::Refused(format!(
                "unknown PTZ move {code:?} (expected one of {})",
                PTZ_CODES.join(", ")
            )));
        }
        self.ptz_start(policy, channel, code, [0, speed, 0]).await?;
        tokio::time::sleep(duration).await;
        self.ptz_stop(policy, channel, code).await
    }

    fn preset_args(policy: &PtzPolicy, index: i64) -> [i64; 3] {
        match policy.preset_arg {
            PresetArg::Arg2 => [0, index, 0],
            PresetArg::Arg1 => [index, 0, 0],
        }
    }

    /// `GotoPreset`, `SetPreset` or `ClearPreset` of preset `index`.
    pub async fn ptz_preset(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        action: &str,
        index: i64,
    ) -> Result<(), Error> {
        let code = match action {
            "goto" => "GotoPreset",
            "set" => "SetPreset",
            "clear" => "ClearPreset",
            other => {
                return Err(Error::Refused(format!(
                    "unknown preset action {other:?} (expected goto, set or clear)"
                )));
            }
        };
        self.ptz_start(policy, channel, code, Self::preset_args(policy, index))
            .await
    }

    /// `StartTour` or `StopTour` of tour `index`.
    pub async fn ptz_tour(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        start: bool,
        index: i64,
    ) -> Result<(), Error> {
        let code = if start { "StartTour" } else { "StopTour" };
        self.ptz_start(policy, channel, code, [0, index, 0]).await
    }

    /// `ptz.getPresets` → `[{Index, Name}]` (an empty list when the device says `null`).
    pub async fn ptz_presets(&self, policy: &PtzPolicy, channel: u32) -> Result<Vec<Value>, Error> {
        let r = self
            .ptz_call(policy, channel, "getPresets", json!({}))
            .await?;
        self.check("ptz.getPresets", &r)?;
        list_of(&r.extract(), "presets").or(Ok(Vec::new()))
    }

    /// `ptz.getTours`.
    pub async fn ptz_tours(&self, policy: &PtzPolicy, channel: u32) -> Result<Vec<Value>, Error> {
        let r = self
            .ptz_call(policy, channel, "getTours", json!({}))
            .await?;
        self.check("ptz.getTours", &r)?;
        list_of(&r.extract(), "tours").or(Ok(Vec::new()))
    }

    /// `ptz.moveAbsolutely` to `pan` (0–360) and `tilt` (0–90) degrees and `zoom`.
    pub async fn ptz_absolute(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        pan: f64,
        tilt: f64,
        zoom: f64,
    ) -> Result<(), Error> {
        if !(0.0..360.0).contains(&pan) || !(0.0..=90.0).contains(&tilt) {
            return Err(Error::Refused(format!(
                "position pan {pan}° tilt {tilt}° is out of range (pan 0–360, tilt 0–90)"
            )));
        }
        self.ptz_ok(
            policy,
            channel,
            "moveAbsolutely",
            json!({"Position": [pan, tilt, zoom], "Speed": {"PanTilt": [1, 1], "Zoom": [1]}}),
        )
        .await
    }

    /// `ptz.gotoHomePosition`, falling back to `start GotoHome` on firmware without it.
    pub async fn ptz_home(&self, policy: &PtzPolicy, channel: u32) -> Result<(), Error> {
        let r = self
            .ptz_call(policy, channel, "gotoHomePosition", json!({}))
            .await?;
        if r.is_success() {
            return Ok(());
        }
        self.ptz_start(policy, channel, "GotoHome", [0, 0, 0]).await
    }

    /// `ptz.moveRelatively` by `[pan, tilt, zoom]` (device units; most firmware: degrees).
    pub async fn ptz_relative(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        delta: [f64; 3],
    ) -> Result<(), Error> {
        self.ptz_ok(
            policy,
            channel,
            "moveRelatively",
            json!({"Position": delta}),
        )
        .await
    }

    /// `ptz.moveContinuously` at velocity `x`, `y`, `z` (−1..1) until [`Client::ptz_stop_move`].
    pub async fn ptz_continuous(
        &self,
        policy: &PtzPolicy,
        channel: u32,
        x: f64,
        y: f64,
        z: f64,
    ) -> Result<(), Error> {
        let clamp = |v: f64| v.clamp(-1.0, 1.0);
        self.ptz_ok(
            policy,
            channel,
            "moveContinuously",
            json!({"x": clamp(x), "y": clamp(y), "z": clamp(z), "timeout": 0}),
        )
        .await
    }

    /// `ptz.stopMove`.
    pub async fn ptz_stop_move(&self, policy: &PtzPolicy, channel: u32) -> Result<(), Error> {
        self.ptz_ok(policy, channel, "stopMove", json!({})).await
    }

    /// `ptz.setHomePosition` (the current position becomes home).
    pub async fn ptz_set_home(&self, policy: &PtzPolicy, channel: u32) -> Result<(), Error> {
        self.ptz_ok(policy, channel, "setHomePosition", json!({}))
            .await
    }

    /// `ptz.reset`.
    pub async fn ptz_reset(&self, policy: &PtzPolicy, channel: u32) -> Result<(), Error> {
        self.ptz_ok(policy, channel, "reset", json!({})).await
    }

    /// `ptz.getCurrentProtocolCaps` → the `caps` object (speeds, ranges, what is supported).
    pub async fn ptz_caps(&self, policy: &PtzPolicy, channel: u32) -> Result<Value, Error> {
        let r = self
            .ptz_call(policy, channel, "getCurrentProtocolCaps", json!({}))
            .await?;
        self.check("ptz.getCurrentProtocolCaps", &r)?;
        let v = r.extract();
        Ok(v.get("caps").cloned().unwrap_or(v))
    }

    /// `ptz.getPatterns`.
    pub async fn ptz_patterns(
        &self,
        policy: &PtzPolicy,
        channel: u32,
    ) -> Result<Vec<Value>, Error> {
        let r = self
            .ptz_call(policy, channel, "getPatterns", json!({}))
            .await?;
        self.check("ptz.getPatterns", &r)?;
        list_of(&r.extract(), "patterns").or(Ok(Vec::new()))
    }

    /// `ptz.isMoving` (a `false` result is the answer, not an error).
    pub async fn ptz_is_moving(&self, policy: &PtzPolicy, channel: u32) -> Result<bool, Error> {
        let r = self
            .ptz_call(policy, channel, "isMoving", json!({}))
            .await?;
        if let Some(e) = &r.error {
            return Err(Error::Rpc {
                peer: self.peer(),
                method: "ptz.isMoving".into(),
                code: e.code,
                message: e.message.clone(),
            });
        }
        Ok(r.is_success())
    }

    /// `ptz.getStatus`, with the position read from `Location` or `Postion`.
    pub async fn ptz_status(&self, policy: &PtzPolicy, channel: u32) -> Result<PtzStatus, Error> {
        let r = self
            .ptz_call(policy, channel, "getStatus", json!({}))
            .await?;
        self.check("ptz.getStatus", &r)?;
        let v = r.extract();
        let status = v.get("status").cloned().unwrap_or(v);
        Ok(ptz_status_of(policy, status))
    }

    /// Finds recorded files of `channel` between `start` and `end` (`YYYY-MM-DD HH:MM:SS`),
    /// `count` at a time (mediaFileFind create, findFile, findNextFile..., close, destroy).
    pub async fn find_files(
        &self,
        channel: u32,
        start: &str,
        end: &str,
        types: &[&str],
        count: u32,
    ) -> Result<Vec<FileInfo>, Error> {
        check_time(start)?;
        check_time(end)?;
        let v = self.call("mediaFileFind.factory.create", json!({})).await?;
        let object = as_u64_lenient(&v)
            .or_else(|| v.get("object").and_then(as_u64_lenient))
            .ok_or_else(|| self.unexpected("mediaFileFind.factory.create", &v))?;
        let result = self
            .find_on(object, channel, start, end, types, count)
            .await;
        let _ = self
            .request_raw(&Call::new("mediaFileFind.close", json!({})).on(object))
            .await;
        let _ = self
            .request_raw(&Call::new("mediaFileFind.destroy", json!({})).on(object))
            .await;
        result
    }

    async fn find_on(
        &self,
        object: u64,
        channel: u32,
        start: &str,
        end: &str,
        types: &[&str],
        count: u32,
    ) -> Result<Vec<FileInfo>, Error> {
        let cond = json!({"condition": {"Channel": channel, "Types": types, "Order": "Ascent",
            "Flags": ["Timing", "Event", "Manual", "Marker"], "StartTime": start, "EndTime": end}});
        let (r, _) = self
            .request_raw(&Call::new("mediaFileFind.findFile", cond).on(object))
            .await?;
        if !r.is_success() {
            let code = r.error.as_ref().map_or(0, |e| e.code);
            if code == codes::NO_DATA {
                return Ok(Vec::new());
            }
            self.check("mediaFileFind.findFile", &r)?;
        }
        let count = count.max(1);
        let mut out = Vec::new();
        loop {
            let (r, _) = self
                .request_raw(
                    &Call::new("mediaFileFind.findNextFile", json!({"count": count})).on(object),
                )
                .await?;
            if !r.is_success() && r.error.is_some() {
                let code = r.error.as_ref().map_or(0, |e| e.code);
                if code == codes::NO_DATA {
                    break;
                }
                self.check("mediaFileFind.findNextFile", &r)?;
            }
            let infos = r
                .params
                .get("infos")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = infos.len();
            out.extend(infos.into_iter().map(file_info));
            if n < count as usize || out.len() > 1_000_000 {
                break;
            }
        }
        Ok(out)
    }

    /// `upgrader.getState`.
    pub async fn upgrade_state(&self) -> Result<Value, Error> {
        self.call("upgrader.getState", json!({})).await
    }

    /// Uploads and applies a firmware package: refused without `confirm`. `progress` gets
    /// (bytes sent, total) after each chunk.
    pub async fn upgrade(
        &self,
        package: Bytes,
        confirm: bool,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(), Error> {
        if !confirm {
            return Err(Error::Refused(
                "a firmware upgrade replaces the device's software; pass --confirm to go ahead"
                    .into(),
            ));
        }
        self.call("upgrader.prepare", json!({"Type": "System"}))
            .await?;
        let total = package.len();
        let mut sent = 0;
        while sent < total {
            let n = UPGRADE_CHUNK.min(total - sent);
            let call = Call {
                method: "upgrader.appendData".into(),
                params: json!({"length": n}),
                object: None,
                data: package.slice(sent..sent + n),
            };
            self.call_with(&call).await?;
            sent += n;
            progress(sent, total);
        }
        self.call("upgrader.execute", json!({})).await.map(|_| ())
    }

    /// `system.listService`.
    pub async fn list_services(&self) -> Result<Vec<Value>, Error> {
        let v = self.call("system.listService", json!({})).await?;
        list_of(&v, "service")
    }

    /// `<service>.listMethod`.
    pub async fn list_methods(&self, service: &str) -> Result<Vec<Value>, Error> {
        let v = self
            .call(&format!("{service}.listMethod"), json!({}))
            .await?;
        list_of(&v, "method")
    }

    /// `system.multicall`: several calls in one request; one reply per call, in order.
    pub async fn multicall(&self, calls: &[(String, Value)]) -> Result<Vec<Value>, Error> {
        let reqs: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| json!({"method": m, "params": p, "id": i + 1}))
            .collect();
        let v = self.call("system.multicall", Value::Array(reqs)).await?;
        match v {
            Value::Array(a) => Ok(a),
            other => Err(self.unexpected("system.multicall", &other)),
        }
    }
}

/// Checks a `YYYY-MM-DD HH:MM:SS` time before it is sent.
pub fn check_time(t: &str) -> Result<(), Error> {
    let b = t.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let ok = b.len() == 19
        && digits.iter().all(|i| b[*i].is_ascii_digit())
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':';
    if ok {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "time {t:?} is not in the form YYYY-MM-DD HH:MM:SS"
        )))
    }
}

fn list_of(v: &Value, key: &str) -> Result<Vec<Value>, Error> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::Object(m) => match m.get(key) {
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(other) => Ok(vec![other.clone()]),
        },
        _ => Ok(Vec::new()),
    }
}

fn file_info(v: Value) -> FileInfo {
    FileInfo {
        path: str_of(&v, &["FilePath"]).unwrap_or_default(),
        channel: v.get("Channel").and_then(as_u64_lenient),
        start: str_of(&v, &["StartTime"]),
        end: str_of(&v, &["EndTime"]),
        length: v.get("Length").and_then(as_u64_lenient),
        kind: str_of(&v, &["Type"]),
        raw: v,
    }
}

/// Reads a PTZ status object (`Location` or `Postion`, raw units) into degrees.
pub fn ptz_status_of(policy: &PtzPolicy, status: Value) -> PtzStatus {
    let pos = status
        .get("Location")
        .or_else(|| status.get("Postion"))
        .or_else(|| status.get("Position"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let at = |i: usize| pos.get(i).and_then(as_f64_lenient);
    let (pan, tilt, zoom) = (at(0), at(1), at(2));
    let full = if policy.pan_fullscale > 0.0 {
        policy.pan_fullscale
    } else {
        8192.0
    };
    PtzStatus {
        pan_raw: pan,
        tilt_raw: tilt,
        zoom_raw: zoom,
        pan_deg: pan.map(|p| p * 360.0 / full),
        tilt_deg: tilt.map(|t| t * policy.tilt_span / full),
        moving: str_of(&status, &["MoveStatus", "Action", "PanTiltStatus"]),
        raw: status,
    }
}

/// Merges `patch` into `base`: objects key by key, arrays element by element, anything else
/// replaced.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(p)) => {
            for (i, v) in p.iter().enumerate() {
                match b.get_mut(i) {
                    Some(slot) => merge(slot, v),
                    None => b.push(v.clone()),
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}
