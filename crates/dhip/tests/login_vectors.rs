//! Login: the §6.4 digest and gen1 vectors, the stage parameters, and what failed logins
//! mean.

use dhip::auth::{
    Challenge, Encryption, LoginError, Stage1, default_hash, old_digest, stage2_params, verify,
};
use dhip::envelope::{Response, SessionId};

#[test]
fn default_digest_vectors() {
    for (realm, random, pw, want) in [
        (
            "Login to FAKE",
            "987654321",
            "admin54321",
            "EEC1CE3FAC638314E513BBF90A0B9D25",
        ),
        (
            "Login to NC-IPTC2200",
            "123456789",
            "admin54321",
            "2B25BE895DD64E1F8A3B440959EE8807",
        ),
        (
            "Login to FAKE",
            "13572468",
            "admin54321",
            "9B52B222AF811AA1B3397FE4E82B49C3",
        ),
        (
            "Login to ASI1201E",
            "29757655",
            "admin54321",
            "01443C614B2F7EBDEB3C53C99035AF03",
        ),
        (
            "Login to ASI1201E",
            "29757655",
            "admin",
            "8EF0CD0AEF844349F57C196712E351FC",
        ),
    ] {
        assert_eq!(
            default_hash("admin", pw, realm, random),
            want,
            "{realm} {random}"
        );
    }
}

#[test]
fn gen1_vectors() {
    for (pw, want) in [
        ("admin", "6QNMIQGe"),
        ("admin54321", "04lnmDix"),
        ("123456", "nTBCS19C"),
        ("", "tlJwpbo6"),
    ] {
        assert_eq!(old_digest(pw), want);
    }
}

fn challenge(json: &str) -> Challenge {
    match Stage1::from_response(&Response::from_json(json.as_bytes()).unwrap(), 0).unwrap() {
        Stage1::Challenge(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn stage_two_answers_each_scheme() {
    let c = challenge(
        r#"{"id":1,"session":195948557,"result":false,"error":{"code":268632079,"message":"login challenge!"},"params":{"realm":"Login to FAKE","random":"987654321","encryption":"Default"}}"#,
    );
    assert_eq!(c.session, Some(SessionId::Int(195_948_557)));
    let p = stage2_params("admin", "admin54321", "Web3.0", &c).unwrap();
    assert_eq!(p["password"], "EEC1CE3FAC638314E513BBF90A0B9D25");
    assert_eq!(p["passwordType"], "Default");
    assert_eq!(p["realm"], "Login to FAKE");
    let old = Challenge {
        encryption: Encryption::OldDigest,
        ..c.clone()
    };
    let p = stage2_params("admin", "admin", "Web3.0", &old).unwrap();
    assert_eq!(p["password"], "6QNMIQGe");
    assert_eq!(p["authorityType"], "OldDigest");
    let basic = Challenge {
        encryption: Encryption::Basic,
        ..c.clone()
    };
    assert_eq!(
        stage2_params("admin", "pw", "Web3.0", &basic).unwrap()["password"],
        "YWRtaW46cHc="
    );
    let odd = Challenge {
        encryption: Encryption::parse(Some("RPAC-256")),
        ..c
    };
    let e = stage2_params("admin", "pw", "Web3.0", &odd).unwrap_err();
    assert!(e.to_string().contains("RPAC-256"), "{e}");
}

#[test]
fn a_result_true_without_realm_means_already_logged_in() {
    let r = Response::from_json(br#"{"id":1,"result":true,"params":null,"session":5}"#).unwrap();
    assert_eq!(
        Stage1::from_response(&r, 0).unwrap(),
        Stage1::AlreadyAuthenticated(Some(SessionId::Int(5)))
    );
}

#[test]
fn challenge_session_falls_back_to_the_header() {
    let r = Response::from_json(
        br#"{"result":false,"params":{"realm":"Login to X","random":"1","encryption":""},"error":{"code":268632079}}"#,
    )
    .unwrap();
    let Stage1::Challenge(c) = Stage1::from_response(&r, 77).unwrap() else {
        panic!()
    };
    assert_eq!(c.session, Some(SessionId::Int(77)));
    assert_eq!(c.encryption, Encryption::Default);
}

#[test]
fn failed_logins_say_why() {
    let wrong = Response::from_json(br#"{"error":{"code":268632085,"message":"Component error: User or password not valid!"},"id":5,"params":{"remainLockSecond":0,"remainLoginTimes":3},"result":false,"session":76594003}"#).unwrap();
    let e = LoginError::from_failure(&wrong, "admin", 2);
    assert_eq!(
        e,
        LoginError::WrongPassword {
            user: "admin".into(),
            attempts_left: Some(3)
        }
    );
    assert_eq!(
        e.to_string(),
        "wrong password for user admin: 3 attempts left before the account locks"
    );
    let locked = Response::from_json(
        br#"{"error":{"code":268632081,"message":"locked"},"id":6,"params":{"remainLockSecond":180,"remainLoginTimes":0},"result":false}"#,
    )
    .unwrap();
    let e = LoginError::from_failure(&locked, "admin", 2);
    assert!(matches!(
        e,
        LoginError::Locked {
            seconds: Some(180),
            ..
        }
    ));
    assert!(e.to_string().contains("locked"), "{e}");
    let in_use =
        Response::from_json(br#"{"error":{"code":268632083},"id":6,"result":false}"#).unwrap();
    let e = LoginError::from_failure(&in_use, "bob", 2);
    assert!(e.to_string().contains("in use"), "{e}");
}

#[test]
fn devices_check_the_uppercase_hash_and_allow_lowercase_only_by_choice() {
    let h = default_hash("admin", "pw", "Login to X", "42");
    let s = Encryption::Default;
    assert!(verify(&s, "admin", "pw", "Login to X", "42", &h, false));
    let lower = h.to_ascii_lowercase();
    assert!(!verify(
        &s,
        "admin",
        "pw",
        "Login to X",
        "42",
        &lower,
        false
    ));
    assert!(verify(&s, "admin", "pw", "Login to X", "42", &lower, true));
    assert!(!verify(&s, "admin", "other", "Login to X", "42", &h, true));
    assert!(!verify(
        &Encryption::Other("X".into()),
        "a",
        "b",
        "c",
        "d",
        "",
        true
    ));
}
