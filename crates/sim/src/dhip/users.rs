//! Accounts and groups (userManager): the user table the login checks passwords against,
//! add/modify/delete with the firmware's "account exists" / "does not exist" errors, and
//! group listings. Only members of the `admin` group may change accounts.

use serde::Serialize;
use serde_json::{Value, json};

use super::rpc::{Outcome, RpcError, RpcResult, codes, param_str};

/// One account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// Account id.
    pub id: u32,
    /// Login name.
    pub name: String,
    /// Password in clear (the login hashes it with the challenge).
    pub password: String,
    /// Group name (`admin` or `user`).
    pub group: String,
    /// Memo.
    pub memo: String,
    /// Several sessions may use the account at once.
    pub sharable: bool,
    /// Built in (cannot be deleted).
    pub reserved: bool,
    /// Granted authorities.
    pub authority_list: Vec<String>,
    /// Last password change, `YYYY-MM-DD HH:MM:SS`.
    pub password_modified: String,
}

/// Authorities of the admin group.
const ADMIN_AUTHORITIES: &[&str] = &[
    "AuthUserMag",
    "AuthSysCfg",
    "AuthSysInfo",
    "AuthManuCtr",
    "AuthPTZ",
    "AuthStoreCfg",
    "AuthRecord",
    "AuthBackup",
    "AuthMonitor",
    "AuthReplay",
    "AuthEventMag",
];

/// The account table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Users {
    users: Vec<User>,
    next_id: u32,
}

fn group_id(group: &str) -> Option<u32> {
    match group {
        "admin" => Some(1),
        "user" => Some(2),
        _ => None,
    }
}

fn group_authorities(group: &str) -> Vec<String> {
    let list: &[&str] = if group == "admin" {
        ADMIN_AUTHORITIES
    } else {
        &["AuthMonitor", "AuthReplay"]
    };
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn not_found() -> RpcError {
    RpcError::new(codes::NO_DATA, "Account does not exist!")
}

impl Users {
    /// A table holding the reserved administrator `name`/`password`.
    pub fn new(name: &str, password: &str, now: &str) -> Self {
        Users {
            users: vec![User {
                id: 1,
                name: name.to_owned(),
                password: password.to_owned(),
                group: "admin".into(),
                memo: "admin 's account".into(),
                sharable: true,
                reserved: true,
                authority_list: group_authorities("admin"),
                password_modified: now.to_owned(),
            }],
            next_id: 2,
        }
    }

    /// The account called `name`.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Every account.
    pub fn all(&self) -> &[User] {
        &self.users
    }

    fn record(u: &User) -> Value {
        json!({
            "Id": u.id, "Name": u.name, "Group": u.group, "Memo": u.memo,
            "Sharable": u.sharable, "Reserved": u.reserved, "Anonymous": false,
            "AuthorityList": u.authority_list, "PwdScore": 50,
            "PasswordModifiedTime": u.password_modified,
        })
    }

    fn need_admin(&self, caller: &str) -> Result<(), RpcError> {
        match self.get(caller) {
            Some(u) if u.group == "admin" => Ok(()),
            _ => Err(RpcError::no_authority()),
        }
    }

    /// Handles `userManager.<method>` for the logged-in `caller` at wall time `now`;
    /// `getActiveUserInfoAll` is answered by the session table, not here.
    pub fn call(
        &mut self,
        method: &str,
        params: &Value,
        caller: &str,
        now: &str,
    ) -> Option<RpcResult> {
        Some(match method {
            "getUserInfoAll" => Ok(Outcome::params(json!({
                "users": self.users.iter().map(Self::record).collect::<Vec<_>>()
            }))),
            "getUserInfo" => param_str(params, "name").and_then(|n| {
                let u = self.get(n).ok_or_else(not_found)?;
                Ok(Outcome::params(json!({"user": Self::record(u)})))
            }),
            "getGroupInfoAll" => Ok(Outcome::params(json!([
                {"Id": 1, "Name": "admin", "Memo": "administrator group",
                 "AuthorityList": group_authorities("admin")},
                {"Id": 2, "Name": "user", "Memo": "user group",
                 "AuthorityList": group_authorities("user")},
            ]))),
            "getAuthorityList" => Ok(Outcome::params(json!(ADMIN_AUTHORITIES))),
            "addUser" => self.add(params, caller, now),
            "modifyUser" => self.modify(params, caller),
            "deleteUser" => self.need_admin(caller).and_then(|()| {
                let name = param_str(params, "name")?;
                let i = self
                    .users
                    .iter()
                    .position(|u| u.name == name)
                    .ok_or_else(not_found)?;
                if self.users[i].reserved {
                    return Err(RpcError::no_authority());
                }
                self.users.remove(i);
                Ok(Outcome::ok())
            }),
            "modifyPassword" => self.modify_password(params, caller, now),
            _ => return None,
        })
    }

    fn add(&mut self, params: &Value, caller: &str, now: &str) -> RpcResult {
        self.need_admin(caller)?;
        let u = params.get("user").ok_or_else(RpcError::invalid_param)?;
        let name = param_str(u, "Name")?;
        let password = param_str(u, "Password")?;
        if name.is_empty() || password.is_empty() {
            return Err(RpcError::invalid_param());
        }
        let group = u.get("Group").and_then(Value::as_str).unwrap_or("user");
        if group_id(group).is_none() {
            return Err(RpcError::new(codes::GROUP_MISSING, "Group does not exist!"));
        }
        if self.get(name).is_some() {
            return Err(RpcError::new(codes::ACCOUNT_EXISTS, "Account exists!"));
        }
        let authority_list = match u.get("AuthorityList").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => group_authorities(group),
        };
        self.users.push(User {
            id: self.next_id,
            name: name.to_owned(),
            password: password.to_owned(),
            group: group.to_owned(),
            memo: u
                .get("Memo")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            sharable: u.get("Sharable").and_then(Value::as_bool).unwrap_or(true),
            reserved: false,
            authority_list,
            password_modified: now.to_owned(),
        });
        self.next_id += 1;
        Ok(Outcome::ok())
    }

    fn modify(&mut self, params: &Value, caller: &str) -> RpcResult {
        self.need_admin(caller)?;
        let u = params.get("user").ok_or_else(RpcError::invalid_param)?;
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| u.get("Name").and_then(Value::as_str))
            .ok_or_else(RpcError::invalid_param)?;
        if let Some(g) = u.get("Group").and_then(Value::as_str)
            && group_id(g).is_none()
        {
            return Err(RpcError::new(codes::GROUP_MISSING, "Group does not exist!"));
        }
        let user = self
            .users
            .iter_mut()
            .find(|x| x.name == name)
            .ok_or_else(not_found)?;
        if let Some(g) = u.get("Group").and_then(Value::as_str) {
            if user.reserved && g != "admin" {
                return Err(RpcError::no_authority());
            }
            user.group = g.to_owned();
        }
        if let Some(m) = u.get("Memo").and_then(Value::as_str) {
            user.memo = m.to_owned();
        }
        if let Some(s) = u.get("Sharable").and_then(Value::as_bool) {
            user.sharable = s;
        }
        if let Some(a) = u.get("AuthorityList").and_then(Value::as_array) {
            user.authority_list = a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        }
        Ok(Outcome::ok())
    }

    fn modify_password(&mut self, params: &Value, caller: &str, now: &str) -> RpcResult {
        let name = param_str(params, "name")?;
        let old = param_str(params, "oldPassword")?;
        let new = param_str(params, "password")?;
        if name != caller {
            self.need_admin(caller)?;
        }
        if new.is_empty() {
            return Err(RpcError::invalid_param());
        }
        let user = self
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(not_found)?;
        if user.password != old {
            return Err(RpcError::new(
                codes::WRONG_PASSWORD,
                "Component error: User or password not valid!",
            ));
        }
        user.password = new.to_owned();
        user.password_modified = now.to_owned();
        Ok(Outcome::ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2024-05-06 07:08:09";

    fn call(u: &mut Users, m: &str, p: Value, caller: &str) -> RpcResult {
        u.call(m, &p, caller, NOW).expect("known method")
    }

    #[test]
    fn add_then_delete_with_exists_and_not_found_errors() {
        let mut u = Users::new("admin", "pw", NOW);
        let add = json!({"user":{"Name":"bob","Password":"x","Group":"user","Memo":"",
                                  "Sharable":true,"AuthorityList":[]}});
        call(&mut u, "addUser", add.clone(), "admin").unwrap();
        let e = call(&mut u, "addUser", add, "admin").unwrap_err();
        assert_eq!(e.code, codes::ACCOUNT_EXISTS);
        let bad_group = json!({"user":{"Name":"eve","Password":"x","Group":"root"}});
        assert_eq!(
            call(&mut u, "addUser", bad_group, "admin")
                .unwrap_err()
                .code,
            codes::GROUP_MISSING
        );
        let e = call(&mut u, "deleteUser", json!({"name":"admin"}), "bob").unwrap_err();
        assert_eq!(e.code, codes::AUTHORITY_CHECK);
        call(&mut u, "deleteUser", json!({"name":"bob"}), "admin").unwrap();
        let e = call(&mut u, "deleteUser", json!({"name":"bob"}), "admin").unwrap_err();
        assert_eq!(e.code, codes::NO_DATA);
        let e = call(&mut u, "deleteUser", json!({"name":"admin"}), "admin").unwrap_err();
        assert_eq!(e.code, codes::AUTHORITY_CHECK, "the reserved admin stays");
    }

    #[test]
    fn groups_are_a_bare_list_and_passwords_need_the_old_one() {
        let mut u = Users::new("admin", "pw", NOW);
        let g = call(&mut u, "getGroupInfoAll", json!({}), "admin").unwrap();
        assert!(g.params.unwrap().is_array());
        let bad = json!({"name":"admin","oldPassword":"no","password":"new"});
        assert!(call(&mut u, "modifyPassword", bad, "admin").is_err());
        let ok = json!({"name":"admin","oldPassword":"pw","password":"new"});
        call(&mut u, "modifyPassword", ok, "admin").unwrap();
        assert_eq!(u.get("admin").unwrap().password, "new");
    }
}
