//! Logins and sessions: the two-stage challenge/response login with a fresh session number
//! per challenge, the wrong-password countdown and lockout, keep-alive expiry on the
//! simulator clock, logout, and the list of active users. The password check is the
//! protocol crate's (`dhip::auth::verify`); nothing here honours `clientType` or
//! `loginType` (no NetKeyboard or Loopback bypass).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::{Value, json};

use dhip::auth::Encryption;

use super::rpc::{Outcome, RpcError, codes};

/// Login and session rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// The announced password scheme.
    pub encryption: Encryption,
    /// Accept a lowercase-hex `Default` digest too (devices may; the default is strict).
    pub accept_lowercase: bool,
    /// The challenge error carries `message` ("Component error: login challenge!").
    pub challenge_message: bool,
    /// `realm` of the challenge (`Login to <salt>`).
    pub realm: String,
    /// A fixed `random` (otherwise a fresh decimal number per challenge).
    pub fixed_random: Option<String>,
    /// `keepAliveInterval` granted at login, seconds.
    pub keep_alive_interval: u32,
    /// A session expires after `keep_alive_interval × timeout_factor` without a request.
    pub timeout_factor: u32,
    /// Wrong passwords allowed before the account locks.
    pub max_failures: u32,
    /// How long a locked account stays locked.
    pub lock_period: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            encryption: Encryption::Default,
            accept_lowercase: false,
            challenge_message: true,
            realm: "Login to SIM0DHIP0000001".into(),
            fixed_random: None,
            keep_alive_interval: 60,
            timeout_factor: 3,
            max_failures: 5,
            lock_period: Duration::from_secs(300),
        }
    }
}

/// Which door a session came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Transport {
    /// DHIP over TCP (the session ends with its connection).
    Dhip,
    /// HTTP `/RPC2_Login` + `/RPC2`.
    Http,
}

/// One session (challenged or logged in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    /// The session number.
    pub id: u32,
    /// The string form HTTP firmware hands out (32 hex digits).
    pub token: String,
    /// The user (after stage 2; at stage 1 only if the probe named one).
    pub user: Option<String>,
    /// The challenge's `random`.
    pub random: String,
    /// Logged in (stage 2 passed).
    pub active: bool,
    /// Clock time of the last request.
    pub last_seen: Duration,
    /// Wall time of the login, `YYYY-MM-DD HH:MM:SS`.
    pub login_time: String,
    /// `clientType` of the login.
    pub client_type: String,
    /// The client's address.
    pub client_addr: String,
    /// DHIP or HTTP.
    pub transport: Transport,
    /// The DHIP connection that logged in, if any.
    pub conn: Option<u64>,
}

/// Where a caller comes from.
#[derive(Clone, Debug)]
pub struct Caller {
    /// DHIP or HTTP.
    pub transport: Transport,
    /// Connection index (DHIP and HTTP alike).
    pub conn: u64,
    /// Peer address, as text.
    pub addr: String,
}

/// The session table and the per-user failure counters.
#[derive(Debug)]
pub struct Sessions {
    policy: SessionPolicy,
    map: BTreeMap<u32, Session>,
    failures: HashMap<String, (u32, Option<Duration>)>,
}

fn bad_credentials(remain_times: u32, remain_lock: u64) -> RpcError {
    RpcError::new(
        codes::WRONG_PASSWORD,
        "Component error: User or password not valid!",
    )
    .with_params(json!({"remainLockSecond": remain_lock, "remainLoginTimes": remain_times}))
}

fn locked(remain_lock: u64) -> RpcError {
    RpcError::new(
        codes::ACCOUNT_LOCKED,
        "Component error: The account has been locked!",
    )
    .with_params(json!({"remainLockSecond": remain_lock, "remainLoginTimes": 0}))
}

/// What `global.login` produced.
#[derive(Debug)]
pub struct LoginReply {
    /// The reply.
    pub outcome: Outcome,
    /// The session the reply (and the connection) carries.
    pub session: Option<u32>,
}

impl Sessions {
    /// An empty table with `policy`.
    pub fn new(policy: SessionPolicy) -> Self {
        Sessions {
            policy,
            map: BTreeMap::new(),
            failures: HashMap::new(),
        }
    }

    /// The rules.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(
            u64::from(self.policy.keep_alive_interval.max(1))
                * u64::from(self.policy.timeout_factor.max(1)),
        )
    }

    fn fresh_id(&self, rng: &mut StdRng) -> u32 {
        loop {
            let id = rng.gen_range(1..=i32::MAX as u32);
            if !self.map.contains_key(&id) {
                return id;
            }
        }
    }

    /// Handles `global.login` (either stage). `session` is the session the request names.
    #[allow(clippy::too_many_arguments)]
    pub fn login(
        &mut self,
        params: &Value,
        session: Option<u32>,
        caller: &Caller,
        users: &super::users::Users,
        rng: &mut StdRng,
        now: Duration,
        wall: &str,
    ) -> LoginReply {
        self.sweep(now);
        let password = params.get("password").and_then(Value::as_str).unwrap_or("");
        let user = params.get("userName").and_then(Value::as_str);
        if password.is_empty() {
            return self.challenge(user, params, caller, rng, now);
        }
        let err = |e: RpcError, session| LoginReply {
            outcome: Outcome::error(e),
            session,
        };
        let Some(s) = session
            .and_then(|id| self.map.get(&id))
            .filter(|s| !s.active)
        else {
            return err(RpcError::invalid_session(), session);
        };
        let id = s.id;
        let Some(name) = user.map(str::to_owned).or_else(|| s.user.clone()) else {
            self.map.remove(&id);
            return err(bad_credentials(self.policy.max_failures, 0), Some(id));
        };
        let random = s.random.clone();
        let entry = self.failures.entry(name.clone()).or_insert((0, None));
        if let Some(until) = entry.1 {
            if until > now {
                self.map.remove(&id);
                return err(locked((until - now).as_secs().max(1)), Some(id));
            }
            *entry = (0, None);
        }
        let good = users.get(&name).is_some_and(|u| {
            dhip::auth::verify(
                &self.policy.encryption,
                &name,
                &u.password,
                &self.policy.realm,
                &random,
                password,
                self.policy.accept_lowercase,
            )
        });
        if !good {
            self.map.remove(&id);
            entry.0 += 1;
            let remain = self.policy.max_failures.saturating_sub(entry.0);
            let mut lock = 0;
            if remain == 0 {
                entry.1 = Some(now + self.policy.lock_period);
                lock = self.policy.lock_period.as_secs();
            }
            return err(bad_credentials(remain, lock), Some(id));
        }
        *entry = (0, None);
        let s = self.map.get_mut(&id).expect("checked above");
        s.active = true;
        s.user = Some(name);
        s.last_seen = now;
        s.login_time = wall.to_owned();
        s.client_type = params
            .get("clientType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        s.transport = caller.transport;
        s.client_addr = caller.addr.clone();
        s.conn = (caller.transport == Transport::Dhip).then_some(caller.conn);
        LoginReply {
            outcome: Outcome::params(json!({"keepAliveInterval": self.policy.keep_alive_interval})),
            session: Some(id),
        }
    }

    fn challenge(
        &mut self,
        user: Option<&str>,
        params: &Value,
        caller: &Caller,
        rng: &mut StdRng,
        now: Duration,
    ) -> LoginReply {
        let id = self.fresh_id(rng);
        let random = match &self.policy.fixed_random {
            Some(r) => r.clone(),
            None => rng.gen_range(10_000_000u32..=999_999_999).to_string(),
        };
        let token: String = (0..32)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
            .collect();
        self.map.insert(
            id,
            Session {
                id,
                token,
                user: user.filter(|u| !u.is_empty()).map(str::to_owned),
                random: random.clone(),
                active: false,
                last_seen: now,
                login_time: String::new(),
                client_type: params
                    .get("clientType")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                client_addr: caller.addr.clone(),
                transport: caller.transport,
                conn: (caller.transport == Transport::Dhip).then_some(caller.conn),
            },
        );
        let mut e = RpcError::new(codes::LOGIN_CHALLENGE, "Component error: login challenge!");
        if !self.policy.challenge_message {
            e.message = None;
        }
        let e = e.with_params(json!({
            "realm": self.policy.realm,
            "random": random,
            "encryption": self.policy.encryption.name(),
        }));
        LoginReply {
            outcome: Outcome::error(e),
            session: Some(id),
        }
    }

    /// The session a request's `session` value names: a number, a decimal string or the
    /// 32-hex token.
    pub fn resolve(&self, v: &Value) -> Option<u32> {
        match v {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => s
                .parse::<u32>()
                .ok()
                .filter(|id| self.map.contains_key(id))
                .or_else(|| self.map.values().find(|x| x.token == *s).map(|x| x.id)),
            _ => None,
        }
        .filter(|id| *id != 0)
    }

    /// The logged-in session `id` at `now` (touching it), or the invalid-session error.
    pub fn check(&mut self, id: Option<u32>, now: Duration) -> Result<&Session, RpcError> {
        self.sweep(now);
        match id.and_then(|id| self.map.get_mut(&id)) {
            Some(s) if s.active => {
                s.last_seen = now;
                Ok(s)
            }
            _ => Err(RpcError::invalid_session()),
        }
    }

    /// Forgets sessions idle longer than the timeout.
    pub fn sweep(&mut self, now: Duration) {
        let t = self.timeout();
        self.map.retain(|_, s| now.saturating_sub(s.last_seen) <= t);
    }

    /// Ends session `id` (logout); false if there was none.
    pub fn logout(&mut self, id: u32) -> bool {
        self.map.remove(&id).is_some()
    }

    /// Ends the DHIP sessions of a closed connection.
    pub fn drop_conn(&mut self, conn: u64) {
        self.map
            .retain(|_, s| !(s.transport == Transport::Dhip && s.conn == Some(conn)));
    }

    /// Ends every session (reboot).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The session `id`, if it exists (challenged or active).
    pub fn get(&self, id: u32) -> Option<&Session> {
        self.map.get(&id)
    }

    /// Logged-in sessions.
    pub fn active(&self) -> impl Iterator<Item = &Session> {
        self.map.values().filter(|s| s.active)
    }

    /// `getActiveUserInfoAll`'s `users` list.
    pub fn active_users(&self, users: &super::users::Users) -> Value {
        Value::Array(
            self.active()
                .map(|s| {
                    let name = s.user.clone().unwrap_or_default();
                    let group = users
                        .get(&name)
                        .map(|u| u.group.clone())
                        .unwrap_or_default();
                    json!({
                        "Id": s.id, "Name": name, "Group": group,
                        "ClientAddress": s.client_addr, "ClientType": s.client_type,
                        "LoginTime": s.login_time,
                    })
                })
                .collect(),
        )
    }

    /// Copies of every session.
    pub fn snapshot(&self) -> Vec<Session> {
        self.map.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhip::users::Users;
    use rand::SeedableRng;

    fn caller() -> Caller {
        Caller {
            transport: Transport::Dhip,
            conn: 1,
            addr: "127.0.0.1".into(),
        }
    }

    struct T {
        s: Sessions,
        users: Users,
        rng: StdRng,
    }

    impl T {
        fn new(policy: SessionPolicy) -> T {
            T {
                s: Sessions::new(policy),
                users: Users::new("admin", "pw", "x"),
                rng: StdRng::seed_from_u64(1),
            }
        }

        fn login(&mut self, p: Value, session: Option<u32>, now: u64) -> LoginReply {
            self.s.login(
                &p,
                session,
                &caller(),
                &self.users,
                &mut self.rng,
                Duration::from_secs(now),
                "w",
            )
        }

        fn full(&mut self, pw: &str, now: u64) -> (LoginReply, u32) {
            let c = self.login(json!({"userName":"admin","password":""}), None, now);
            let id = c.session.unwrap();
            let params = c.outcome.params.unwrap();
            let (realm, random) = (params["realm"].as_str(), params["random"].as_str());
            let hash = dhip::auth::default_hash("admin", pw, realm.unwrap(), random.unwrap());
            let p = json!({"userName":"admin","password":hash});
            (self.login(p, Some(id), now), id)
        }
    }

    #[test]
    fn challenge_then_login_keeps_the_session() {
        let mut t = T::new(SessionPolicy::default());
        let c = t.login(
            json!({"userName":"admin","password":"","clientType":"Web3.0"}),
            None,
            0,
        );
        let e = c.outcome.error.clone().unwrap();
        assert_eq!(e.code, codes::LOGIN_CHALLENGE);
        assert_eq!(c.outcome.params.as_ref().unwrap()["encryption"], "Default");
        assert_ne!(c.session, Some(0));
        let (ok, id) = t.full("pw", 0);
        assert_eq!(ok.outcome.result, json!(true));
        assert_eq!(ok.session, Some(id));
        assert!(t.s.check(Some(id), Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn wrong_passwords_count_down_then_lock() {
        let mut t = T::new(SessionPolicy {
            max_failures: 3,
            ..SessionPolicy::default()
        });
        for remain in [2, 1] {
            let (r, _) = t.full("bad", 0);
            let p = r.outcome.params.unwrap();
            assert_eq!(p["remainLoginTimes"], remain);
            assert_eq!(r.outcome.error.unwrap().code, codes::WRONG_PASSWORD);
        }
        let (r, _) = t.full("bad", 0);
        assert_eq!(r.outcome.params.unwrap()["remainLockSecond"], 300);
        let (r, _) = t.full("pw", 10);
        assert_eq!(r.outcome.error.unwrap().code, codes::ACCOUNT_LOCKED);
        assert_eq!(r.outcome.params.unwrap()["remainLockSecond"], 290);
        let (r, _) = t.full("pw", 301);
        assert_eq!(r.outcome.result, json!(true));
    }

    #[test]
    fn sessions_expire_without_traffic_and_end_at_logout() {
        let mut t = T::new(SessionPolicy {
            keep_alive_interval: 10,
            timeout_factor: 2,
            ..SessionPolicy::default()
        });
        let (_, id) = t.full("pw", 0);
        assert!(t.s.check(Some(id), Duration::from_secs(20)).is_ok());
        assert!(t.s.check(Some(id), Duration::from_secs(40)).is_ok());
        assert!(t.s.check(Some(id), Duration::from_secs(61)).is_err());
        let (_, id) = t.full("pw", 100);
        assert!(t.s.logout(id));
        assert!(t.s.check(Some(id), Duration::from_secs(100)).is_err());
    }

    #[test]
    fn stage_two_without_a_challenge_is_refused() {
        let mut t = T::new(SessionPolicy::default());
        let r = t.login(json!({"userName":"admin","password":"x"}), Some(5), 0);
        assert_eq!(r.outcome.error.unwrap().code, codes::INVALID_SESSION);
    }
}
