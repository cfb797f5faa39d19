//! The device's identity (what magicBox and discovery report) and its configuration tables
//! (configManager): defaults per table, read/write with shape checks, restore and defaults.
//! Per-channel tables (Encode, ChannelTitle, VideoWidget) are lists with one entry per
//! channel; the others are objects, as on real firmware.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::rpc::RpcError;

/// Who the simulated device says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// Serial number (`getSerialNo`, discovery `SerialNo`).
    pub serial: String,
    /// Model (`getDeviceType`, discovery `DeviceType`).
    pub device_type: String,
    /// Class: IPC, NVR, VTO, SD… (`getDeviceClass`).
    pub device_class: String,
    /// Vendor (`getVendor`).
    pub vendor: String,
    /// Machine name (General.MachineName, discovery `MachineName`).
    pub machine_name: String,
    /// Software version string.
    pub version: String,
    /// Software build date (`YYYY-MM-DD`).
    pub build_date: String,
    /// Hardware version.
    pub hardware_version: String,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Number of video input channels (PTZ heads, encoders, titles).
    pub channels: usize,
}

impl Default for DeviceIdentity {
    fn default() -> Self {
        DeviceIdentity {
            serial: "SIM0DHIP0000001".into(),
            device_type: "SD-2N-4G".into(),
            device_class: "SD".into(),
            vendor: "General".into(),
            machine_name: "camgate-dhip-sim".into(),
            version: "2.800.0000000.16.R".into(),
            build_date: "2024-03-01".into(),
            hardware_version: "1.00".into(),
            mac: "3c:ef:8c:00:00:01".into(),
            channels: 1,
        }
    }
}

/// Names of the tables the device knows.
pub const TABLE_NAMES: &[&str] = &[
    "General",
    "Encode",
    "Network",
    "Snap",
    "InnerServer",
    "ChannelTitle",
    "VideoWidget",
    "NTP",
    "Locales",
];

/// Tables that are per-channel lists.
const PER_CHANNEL: &[&str] = &["Encode", "ChannelTitle", "VideoWidget", "Snap"];

fn stream(compression: &str, w: u32, h: u32, fps: u32, kbps: u32, enable: bool) -> Value {
    json!({
        "AudioEnable": false,
        "VideoEnable": enable,
        "Audio": {"Compression": "G.711A", "Frequency": 8000, "Depth": 16, "Bitrate": 64},
        "Video": {
            "Compression": compression, "Width": w, "Height": h, "FPS": fps,
            "BitRateControl": "CBR", "BitRate": kbps, "GOP": fps * 2,
            "Profile": "Main", "Quality": 4, "Priority": 0
        }
    })
}

fn encode_channel() -> Value {
    let main = stream("H.264", 1920, 1080, 25, 4096, true);
    let extra = stream("H.264", 640, 360, 25, 512, true);
    let extra_off = stream("H.264", 352, 288, 15, 256, false);
    let snap = stream("MJPG", 1920, 1080, 1, 1024, true);
    json!({
        "MainFormat": [main.clone(), main.clone(), main.clone(), main],
        "ExtraFormat": [extra, extra_off.clone(), extra_off],
        "SnapFormat": [snap.clone(), snap.clone(), snap],
    })
}

/// The factory default of table `name` for a device with `id`; `None` for an unknown name.
pub fn default_table(name: &str, id: &DeviceIdentity) -> Option<Value> {
    let chans = id.channels.max(1);
    let per = |f: &dyn Fn(usize) -> Value| Value::Array((0..chans).map(f).collect());
    Some(match name {
        "General" => json!({
            "MachineName": id.machine_name, "MachineAddress": "", "LocalNo": 8,
            "LockLoginEnable": true, "LockLoginTimes": 5
        }),
        "Encode" => per(&|_| encode_channel()),
        "Network" => json!({
            "Domain": "dahua", "Hostname": id.machine_name, "DefaultInterface": "eth0",
            "eth0": {
                "IPAddress": "127.0.0.1", "SubnetMask": "255.0.0.0",
                "DefaultGateway": "127.0.0.1", "DhcpEnable": false,
                "PhysicalAddress": id.mac, "MTU": 1500,
                "DnsServers": ["127.0.0.1", "127.0.0.1"]
            }
        }),
        "Snap" => per(&|_| json!({"ShotType": "Timing", "Period": 1, "Quality": 4})),
        "InnerServer" => json!({
            "Telnet": {"Enable": false, "Port": 23},
            "SSH": {"Enable": false, "Port": 22},
            "FTP": {"Enable": false, "Port": 21}
        }),
        "ChannelTitle" => per(&|c| json!({"Name": format!("Channel{}", c + 1)})),
        "VideoWidget" => per(&|c| {
            json!({
                "ChannelTitle": {"EncodeBlend": true, "PreviewBlend": true,
                                  "Rect": [0, 0, 2048, 512], "Text": format!("Channel{}", c + 1)},
                "TimeTitle": {"EncodeBlend": true, "PreviewBlend": true,
                               "Rect": [4096, 0, 8191, 512], "ShowWeek": false},
                "Covers": [], "CustomTitle": []
            })
        }),
        "NTP" => json!({
            "Enable": false, "Address": "pool.ntp.org", "Port": 123,
            "UpdatePeriod": 10, "TimeZone": 13, "TimeZoneDesc": "Beijing"
        }),
        "Locales" => json!({
            "TimeFormat": "yyyy-MM-dd HH:mm:ss", "DSTEnable": false, "Language": "English",
            "VideoStandard": "PAL"
        }),
        _ => return None,
    })
}

/// The configuration table store.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigStore {
    tables: BTreeMap<String, Value>,
    identity: DeviceIdentity,
    /// The identity the device left the factory with (what defaults are made from).
    factory: DeviceIdentity,
}

fn unknown_table(name: &str) -> RpcError {
    let mut e = RpcError::unknown();
    e.message = Some(format!(
        "Unknown error! error code was not set in service! ({name})"
    ));
    e
}

impl ConfigStore {
    /// Factory defaults for a device with `identity`.
    pub fn new(identity: &DeviceIdentity) -> Self {
        let tables = TABLE_NAMES
            .iter()
            .filter_map(|n| Some(((*n).to_owned(), default_table(n, identity)?)))
            .collect();
        ConfigStore {
            tables,
            identity: identity.clone(),
            factory: identity.clone(),
        }
    }

    /// Table `name` (`getConfig`).
    pub fn get(&self, name: &str) -> Result<&Value, RpcError> {
        self.tables.get(name).ok_or_else(|| unknown_table(name))
    }

    /// The factory default of `name` (`getDefault`).
    pub fn get_default(&self, name: &str) -> Result<Value, RpcError> {
        default_table(name, &self.factory).ok_or_else(|| unknown_table(name))
    }

    /// Replaces table `name` with `table` (`setConfig`; clients read, modify, write the whole
    /// table). The shape must match: an object for object tables, a list of one object per
    /// channel for per-channel tables.
    pub fn set(&mut self, name: &str, table: Value) -> Result<(), RpcError> {
        let current = self.tables.get(name).ok_or_else(|| unknown_table(name))?;
        let ok = match (current, &table) {
            (Value::Object(_), Value::Object(_)) => true,
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && b.iter().all(Value::is_object)
            }
            _ => false,
        };
        if !ok {
            return Err(RpcError::invalid_param());
        }
        if name == "General"
            && let Some(n) = table.get("MachineName").and_then(Value::as_str)
        {
            self.identity.machine_name = n.to_owned();
        }
        self.tables.insert(name.to_owned(), table);
        Ok(())
    }

    /// Resets the named tables to factory defaults (`restore`); unknown names fail and change
    /// nothing.
    pub fn restore(&mut self, names: &[String]) -> Result<(), RpcError> {
        let mut fresh = Vec::new();
        for n in names {
            fresh.push((n.clone(), self.get_default(n)?));
        }
        for (n, t) in fresh {
            if n == "General" {
                self.identity.machine_name = self.factory.machine_name.clone();
            }
            self.tables.insert(n, t);
        }
        Ok(())
    }

    /// Whether table `name` is a per-channel list.
    pub fn is_per_channel(name: &str) -> bool {
        PER_CHANNEL.contains(&name)
    }

    /// The table names (`getMemberNames`).
    pub fn names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    /// A copy of every table.
    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        self.tables.clone()
    }

    /// The current machine name (General.MachineName).
    pub fn machine_name(&self) -> &str {
        &self.identity.machine_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_has_four_main_three_extra_three_snap_formats() {
        let id = DeviceIdentity {
            channels: 2,
            ..DeviceIdentity::default()
        };
        let s = ConfigStore::new(&id);
        let enc = s.get("Encode").unwrap().as_array().unwrap();
        assert_eq!(enc.len(), 2);
        assert_eq!(enc[0]["MainFormat"].as_array().unwrap().len(), 4);
        assert_eq!(enc[0]["ExtraFormat"].as_array().unwrap().len(), 3);
        assert_eq!(enc[0]["SnapFormat"].as_array().unwrap().len(), 3);
        assert!(s.get("General").unwrap().is_object());
        assert!(ConfigStore::is_per_channel("ChannelTitle"));
    }

    #[test]
    fn set_replaces_the_whole_table_and_checks_its_shape() {
        let mut s = ConfigStore::new(&DeviceIdentity::default());
        let mut t = s.get("InnerServer").unwrap().clone();
        t["Telnet"]["Enable"] = json!(true);
        s.set("InnerServer", t).unwrap();
        assert_eq!(s.get("InnerServer").unwrap()["SSH"]["Enable"], json!(false));
        assert_eq!(
            s.get("InnerServer").unwrap()["Telnet"]["Enable"],
            json!(true)
        );
        s.set("InnerServer", json!({"Telnet": {"Enable": false}}))
            .unwrap();
        assert!(
            s.get("InnerServer").unwrap().get("SSH").is_none(),
            "no merge"
        );
        assert!(s.set("ChannelTitle", json!({"Name": "x"})).is_err());
        assert!(
            s.set("ChannelTitle", json!([{"Name": "a"}, {"Name": "b"}]))
                .is_err()
        );
        assert!(s.set("Nope", json!({})).is_err());
        s.restore(&["InnerServer".into()]).unwrap();
        assert_eq!(s.get("InnerServer").unwrap()["SSH"]["Enable"], json!(false));
        assert!(s.restore(&["Nope".into()]).is_err());
    }
}
