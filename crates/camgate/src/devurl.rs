//! Device URLs of the vendor sources: `SCHEME://[user[:pass]@]TARGET[?channel=N&subtype=N]`
//! (`dahua-p2p://SERIAL`, `dhip://HOST[:PORT]`), with credentials that camera options
//! override.

/// A parsed device URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceUrl {
    /// What follows the scheme and the userinfo, before the query (serial, host:port).
    pub target: String,
    /// User name from the userinfo.
    pub user: Option<String>,
    /// Password from the userinfo.
    pub password: Option<String>,
    /// `channel`, when given.
    pub channel: Option<u32>,
    /// `subtype`, when given.
    pub subtype: Option<u32>,
}

impl DeviceUrl {
    /// Parses `url`; only `channel` and `subtype` are allowed in the query.
    pub fn parse(url: &str) -> Result<DeviceUrl, String> {
        let rest = url
            .split_once("://")
            .map(|(_, r)| r)
            .ok_or_else(|| format!("{url:?} is not a URL"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (target, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut out = DeviceUrl {
            target: target.trim_end_matches('/').to_string(),
            user: None,
            password: None,
            channel: None,
            subtype: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let n: u32 = v
                .parse()
                .map_err(|_| format!("{k}={v:?} in {url:?} is not a number"))?;
            match k {
                "channel" => out.channel = Some(n),
                "subtype" => out.subtype = Some(n),
                _ => {
                    return Err(format!(
                        "unknown parameter {k:?} in {url:?} (channel, subtype)"
                    ));
                }
            }
        }
        match auth.map(|a| a.split_once(':')) {
            Some(Some((u, p))) => {
                out.user = Some(u.to_string());
                out.password = Some(p.to_string());
            }
            Some(None) => out.user = auth.map(str::to_string),
            None => {}
        }
        Ok(out)
    }

    /// The user and password: the options' first, then the URL's; an error names what is
    /// missing.
    pub fn credentials(
        &self,
        user: Option<&String>,
        password: Option<&String>,
    ) -> Result<(String, String), String> {
        let u = user
            .cloned()
            .or_else(|| self.user.clone())
            .ok_or("the username is missing (option `username` or user@ in the URL)")?;
        let p = password
            .cloned()
            .or_else(|| self.password.clone())
            .ok_or("the password is missing (option `password` or user:pass@ in the URL)")?;
        Ok((u, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_target_and_query_are_split() {
        let u = DeviceUrl::parse("dhip://admin:p@ss@192.0.2.1:5000?channel=2&subtype=1").unwrap();
        assert_eq!(u.target, "192.0.2.1:5000");
        // The last '@' ends the userinfo; the first ':' splits it.
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("admin"), Some("p@ss"))
        );
        assert_eq!((u.channel, u.subtype), (Some(2), Some(1)));
        let bare = DeviceUrl::parse("dahua-p2p://SN123/").unwrap();
        assert_eq!(bare.target, "SN123");
        assert_eq!(bare.user, None);
        assert!(DeviceUrl::parse("dhip://h?channel=x").is_err());
        assert!(DeviceUrl::parse("dhip://h?zoom=1").is_err());
        assert!(DeviceUrl::parse("no-scheme").is_err());
        let (u, p) = bare
            .credentials(Some(&"opt".to_string()), Some(&"pw".to_string()))
            .unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("opt", "pw"));
        assert!(bare.credentials(None, None).is_err());
    }
}
