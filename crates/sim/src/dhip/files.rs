//! Recorded files on the simulated SD card and the mediaFileFind search over them:
//! `findFile` filters the fixtures by channel, time range and type, `findNextFile` hands
//! them out in batches of `count`, and an empty search fails with "no data" (285409284).
//! The bytes of each file are generated on demand elsewhere; here a file is its metadata.

use serde::Serialize;
use serde_json::{Value, json};

use super::clock::parse_time;
use super::rpc::{Outcome, RpcError, RpcResult, as_u64};

/// Most files one `findNextFile` returns.
pub const MAX_BATCH: u64 = 100;

/// One recorded file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileFixture {
    /// Channel (0-based).
    pub channel: u32,
    /// `YYYY-MM-DD HH:MM:SS`.
    pub start: String,
    /// `YYYY-MM-DD HH:MM:SS`.
    pub end: String,
    /// `dav` or `jpg`.
    pub kind: String,
    /// Absolute path on the device (downloadable through RPC_Loadfile).
    pub path: String,
    /// Recording flags (`Timing`, `Event`, `Manual`, `Marker`).
    pub flags: Vec<String>,
    /// Events that triggered it (`VideoMotion`…).
    pub events: Vec<String>,
}

impl FileFixture {
    /// A timed `.dav` recording on `channel` from `start` lasting `secs`, at Dahua's path.
    pub fn dav(channel: u32, start: &str, secs: i64) -> FileFixture {
        let t0 = parse_time(start).unwrap_or(0);
        let end = super::clock::format_time(t0 + secs);
        let (d, s, e) = (
            &start[..10.min(start.len())],
            start.get(11..).unwrap_or(""),
            end.get(11..).unwrap_or(""),
        );
        let hour = s.get(..2).unwrap_or("00");
        let path = format!(
            "/mnt/sd/{d}/001/dav/{hour}/{}-{}[R][0@0][0].dav",
            s.replace(':', "."),
            e.replace(':', ".")
        );
        FileFixture {
            channel,
            start: start.to_owned(),
            end,
            kind: "dav".into(),
            path,
            flags: vec!["Timing".into()],
            events: Vec::new(),
        }
    }

    /// The default fixture set: five ten-minute recordings on channel 0 on 2024-05-06
    /// (the last one triggered by motion) and one snapshot picture.
    pub fn defaults() -> Vec<FileFixture> {
        let mut v: Vec<FileFixture> = (0..5)
            .map(|i| FileFixture::dav(0, &format!("2024-05-06 0{}:00:00", i + 1), 600))
            .collect();
        v[4].flags = vec!["Event".into()];
        v[4].events = vec!["VideoMotion".into()];
        v.push(FileFixture {
            channel: 0,
            start: "2024-05-06 06:30:00".into(),
            end: "2024-05-06 06:30:00".into(),
            kind: "jpg".into(),
            path: "/mnt/sd/2024-05-06/001/jpg/06/30/00[M][0@0][0].jpg".into(),
            flags: vec!["Manual".into()],
            events: Vec::new(),
        });
        v
    }

    fn duration(&self) -> i64 {
        match (parse_time(&self.start), parse_time(&self.end)) {
            (Some(a), Some(b)) => (b - a).max(0),
            _ => 0,
        }
    }

    /// The `infos[]` entry for this file, whose content is `length` bytes.
    pub fn info(&self, length: u64) -> Value {
        json!({
            "Channel": self.channel, "StartTime": self.start, "EndTime": self.end,
            "Type": self.kind, "FilePath": self.path, "Length": length,
            "Duration": self.duration(), "Disk": 0, "Partition": 0, "Cluster": 0,
            "VideoStream": "Main", "Flags": self.flags, "Events": self.events,
            "PicIndex": 0, "Repeat": 0, "WorkDir": "/mnt/sd", "WorkDirSN": 0,
        })
    }
}

/// The state of one mediaFileFind object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileFind {
    /// Indices into the fixture list of the pending results.
    found: Option<Vec<usize>>,
    cursor: usize,
}

fn condition_matches(c: &Value, f: &FileFixture) -> Result<bool, RpcError> {
    if let Some(ch) = c.get("Channel") {
        let ch = as_u64(ch).ok_or_else(RpcError::invalid_param)?;
        if u64::from(f.channel) != ch {
            return Ok(false);
        }
    }
    if let Some(types) = c.get("Types").and_then(Value::as_array)
        && !types.iter().any(|t| t.as_str() == Some(f.kind.as_str()))
    {
        return Ok(false);
    }
    if let Some(flags) = c.get("Flags").and_then(Value::as_array)
        && !flags.is_empty()
        && !flags
            .iter()
            .any(|t| t.as_str().is_some_and(|t| f.flags.iter().any(|x| x == t)))
    {
        return Ok(false);
    }
    let time = |k: &str| -> Result<Option<i64>, RpcError> {
        match c.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(parse_time)
                .map(Some)
                .ok_or_else(RpcError::invalid_param),
        }
    };
    let (from, to) = (time("StartTime")?, time("EndTime")?);
    let (fs, fe) = (
        parse_time(&f.start).unwrap_or(0),
        parse_time(&f.end).unwrap_or(0),
    );
    Ok(from.is_none_or(|a| fe >= a) && to.is_none_or(|b| fs <= b))
}

impl FileFind {
    /// Handles `mediaFileFind.<method>` on this object against `files`; `length` gives a
    /// file's size in bytes.
    pub fn call(
        &mut self,
        method: &str,
        params: &Value,
        files: &[FileFixture],
        length: &mut dyn FnMut(&FileFixture) -> u64,
    ) -> Option<RpcResult> {
        Some(match method {
            "findFile" => self.find(params, files),
            "findNextFile" => {
                let Some(found) = &self.found else {
                    return Some(Err(RpcError::no_data()));
                };
                let count = match params.get("count").map(as_u64) {
                    Some(Some(n)) if n > 0 => n.min(MAX_BATCH) as usize,
                    _ => return Some(Err(RpcError::invalid_param())),
                };
                let batch: Vec<usize> = found
                    .iter()
                    .skip(self.cursor)
                    .take(count)
                    .copied()
                    .collect();
                self.cursor += batch.len();
                if batch.is_empty() {
                    Ok(Outcome::params(json!({"found": 0})))
                } else {
                    let infos: Vec<Value> = batch
                        .iter()
                        .map(|i| files[*i].info(length(&files[*i])))
                        .collect();
                    Ok(Outcome::params(
                        json!({"found": infos.len(), "infos": infos}),
                    ))
                }
            }
            "getCount" => Ok(Outcome::params(json!({
                "count": self.found.as_ref().map_or(0, Vec::len)
            }))),
            "close" => {
                self.found = None;
                self.cursor = 0;
                Ok(Outcome::ok())
            }
            _ => return None,
        })
    }

    fn find(&mut self, params: &Value, files: &[FileFixture]) -> RpcResult {
        let c = params
            .get("condition")
            .filter(|c| c.is_object())
            .ok_or_else(RpcError::invalid_param)?;
        let mut found = Vec::new();
        for (i, f) in files.iter().enumerate() {
            if condition_matches(c, f)? {
                found.push(i);
            }
        }
        found.sort_by(|a, b| files[*a].start.cmp(&files[*b].start));
        if c.get("Order").and_then(Value::as_str) == Some("Descent") {
            found.reverse();
        }
        self.cursor = 0;
        if found.is_empty() {
            self.found = None;
            return Err(RpcError::no_data());
        }
        self.found = Some(found);
        Ok(Outcome::ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: &mut FileFind, m: &str, p: Value, files: &[FileFixture]) -> RpcResult {
        f.call(m, &p, files, &mut |_| 1234).unwrap()
    }

    #[test]
    fn the_default_paths_look_like_dahua_paths() {
        let d = FileFixture::defaults();
        assert_eq!(
            d[0].path,
            "/mnt/sd/2024-05-06/001/dav/01/01.00.00-01.10.00[R][0@0][0].dav"
        );
        assert_eq!(d[0].end, "2024-05-06 01:10:00");
    }

    #[test]
    fn find_filters_then_batches_by_count() {
        let files = FileFixture::defaults();
        let mut f = FileFind::default();
        let cond = json!({"condition":{"Channel":0,"Types":["dav"],"Order":"Ascent",
            "Flags":["Timing","Event","Manual","Marker"],
            "StartTime":"2024-05-06 02:05:00","EndTime":"2024-05-06 05:00:00"}});
        call(&mut f, "findFile", cond, &files).unwrap();
        let b1 = call(&mut f, "findNextFile", json!({"count":2}), &files).unwrap();
        let p = b1.params.unwrap();
        assert_eq!(p["found"], 2);
        assert_eq!(p["infos"][0]["StartTime"], "2024-05-06 02:00:00");
        assert_eq!(p["infos"][0]["Length"], 1234);
        let b2 = call(&mut f, "findNextFile", json!({"count":2}), &files).unwrap();
        assert_eq!(b2.params.unwrap()["found"], 2);
        let b3 = call(&mut f, "findNextFile", json!({"count":2}), &files).unwrap();
        assert_eq!(b3.params.unwrap()["found"], 0);
    }

    #[test]
    fn an_empty_search_is_no_data() {
        let files = FileFixture::defaults();
        let mut f = FileFind::default();
        let e = call(
            &mut f,
            "findFile",
            json!({"condition":{"Channel":3}}),
            &files,
        )
        .unwrap_err();
        assert_eq!(e.code, super::super::rpc::codes::NO_DATA);
        assert!(call(&mut f, "findFile", json!({}), &files).is_err());
    }
}
