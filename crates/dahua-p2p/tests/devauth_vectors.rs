//! Type-1 device authentication: the golden vectors of the protocol notes, the auth block,
//! the simulator-side check and the `/info/device` blob.

use dahua_p2p::devauth::{
    AuthBlock, AuthCheckFailure, DEFAULT_RAND_SALT, DevAuthError, DeviceCredentials, DeviceInfo,
    DeviceKey, decrypt_info, encrypt_info, rand_salt_from_info_body, verify,
};
use dahua_p2p::xmlbody::{ElementOrder, XmlBody};

fn key() -> DeviceKey {
    DeviceKey::derive("admin", "pass123", "Rs4lt")
}

fn creds() -> DeviceCredentials {
    DeviceCredentials::with_salt("admin", "pass123", "Rs4lt")
}

#[test]
fn key_is_uppercase_hex_md5() {
    assert_eq!(key().as_str(), "E09866C7DE38480830B5C41C3EB39768");
    assert_eq!(creds().key(), key());
}

#[test]
fn dk_of_777() {
    assert_eq!(
        hex::encode(key().dk(777)),
        "b372ad6b00ff576fa244fcb622b5297cbd5bd5050ff7263a3f624ac4460296c6"
    );
}

#[test]
fn enc_of_a_single_local_addr() {
    assert_eq!(
        key().encrypt(777, "127.0.0.1:40000"),
        "/R40Newcuzi0faikzfZA"
    );
}

#[test]
fn enc_of_a_local_addr_list() {
    assert_eq!(
        key().encrypt(777, "192.168.1.10,10.8.0.2,127.0.0.1:50000"),
        "/RUxNe0Eszi0aa2k0fdAt/DT5jpJHZfKSE2h6nszQKlDw+8oYQ=="
    );
}

#[test]
fn dec_inverts_enc() {
    let k = key();
    assert_eq!(
        k.decrypt(777, "/R40Newcuzi0faikzfZA").unwrap(),
        "127.0.0.1:40000"
    );
    assert_eq!(
        k.decrypt(777, "/RUxNe0Eszi0aa2k0fdAt/DT5jpJHZfKSE2h6nszQKlDw+8oYQ")
            .unwrap(),
        "192.168.1.10,10.8.0.2,127.0.0.1:50000",
        "padding is optional"
    );
    assert!(matches!(
        k.decrypt(777, "not base64!"),
        Err(DevAuthError::BadBase64 { .. })
    ));
}

#[test]
fn dev_auth_signs_the_encrypted_local_addr() {
    assert_eq!(
        key().dev_auth(777, 1_700_000_000, "/R40Newcuzi0faikzfZA"),
        "t2Cqkm5AuqmP1raemFgKyu6CmoJeIOZIevOQYZbF3gE="
    );
}

#[test]
fn dev_auth_over_the_plaintext_differs() {
    assert_eq!(
        key().dev_auth(777, 1_700_000_000, "127.0.0.1:40000"),
        "9LWQ1/RY6DvOduVBs8UhiMn8/CB79u14N5s9b/qz8Gg="
    );
}

#[test]
fn dev_auth_of_the_list_vector() {
    assert_eq!(
        key().dev_auth(
            777,
            1_700_000_000,
            "/RUxNe0Eszi0aa2k0fdAt/DT5jpJHZfKSE2h6nszQKlDw+8oYQ=="
        ),
        "Ziefve2EE7bCo9XcmxOXgJUpMflIzUkaFIOD3jlpbqg="
    );
}

#[test]
fn auth_block_writes_the_five_elements_in_order() {
    let block = creds().auth_block(777, 1_700_000_000, "/R40Newcuzi0faikzfZA");
    let mut body = XmlBody::new();
    block.write_to(&mut body);
    body.push("Identify", "0 1 2 3 4 5 6 7");
    assert_eq!(
        body.to_xml(ElementOrder::AsGiven),
        "<body><CreateDate>1700000000</CreateDate>\
         <DevAuth>t2Cqkm5AuqmP1raemFgKyu6CmoJeIOZIevOQYZbF3gE=</DevAuth><Nonce>777</Nonce>\
         <RandSalt>Rs4lt</RandSalt><UserName>admin</UserName>\
         <Identify>0 1 2 3 4 5 6 7</Identify></body>"
    );
    assert_eq!(AuthBlock::from_body(&body).unwrap(), block);
}

#[test]
fn auth_block_from_body_names_what_is_missing() {
    let body = XmlBody::new().with("CreateDate", "1").with("Nonce", "x");
    assert_eq!(
        AuthBlock::from_body(&body),
        Err(DevAuthError::Missing("DevAuth"))
    );
    let body = XmlBody::new()
        .with("CreateDate", "1")
        .with("DevAuth", "a")
        .with("Nonce", "x")
        .with("RandSalt", "s")
        .with("UserName", "u");
    assert!(matches!(
        AuthBlock::from_body(&body),
        Err(DevAuthError::BadNumber { field: "Nonce", .. })
    ));
}

#[test]
fn negative_nonces_work_end_to_end() {
    let c = creds();
    let enc = c.key().encrypt(-5, "10.0.0.1:1");
    let block = c.auth_block(-5, 1_700_000_000, &enc);
    assert_eq!(verify(&c, &block, &enc), Ok(()));
    assert_eq!(c.key().decrypt(-5, &enc).unwrap(), "10.0.0.1:1");
}

#[test]
fn verify_accepts_the_golden_block() {
    let block = creds().auth_block(777, 1_700_000_000, "/R40Newcuzi0faikzfZA");
    assert_eq!(verify(&creds(), &block, "/R40Newcuzi0faikzfZA"), Ok(()));
}

#[test]
fn verify_rejects_a_signed_plaintext() {
    let block = creds().auth_block(777, 1_700_000_000, "127.0.0.1:40000");
    let err = verify(&creds(), &block, "/R40Newcuzi0faikzfZA").unwrap_err();
    assert_eq!(
        err,
        AuthCheckFailure::BadDevAuth {
            user: "admin".into()
        }
    );
    assert_eq!(err.cloud_error_text(), "DevPwd_InvalidDigest");
}

#[test]
fn verify_rejects_a_wrong_password() {
    let wrong = DeviceCredentials::with_salt("admin", "guess", "Rs4lt");
    let block = wrong.auth_block(777, 1_700_000_000, "");
    assert!(matches!(
        verify(&creds(), &block, ""),
        Err(AuthCheckFailure::BadDevAuth { .. })
    ));
}

#[test]
fn verify_rejects_the_default_salt_on_a_salted_device() {
    let old = DeviceCredentials::new("admin", "pass123");
    assert_eq!(old.rand_salt, DEFAULT_RAND_SALT);
    let err = verify(&creds(), &old.auth_block(1, 2, ""), "").unwrap_err();
    assert_eq!(
        err,
        AuthCheckFailure::WrongSalt {
            got: DEFAULT_RAND_SALT.into()
        }
    );
    assert_eq!(err.cloud_error_text(), "DevPwd_InvalidSalt");
}

#[test]
fn verify_rejects_another_user() {
    let other = DeviceCredentials::with_salt("guest", "pass123", "Rs4lt");
    assert!(matches!(
        verify(&creds(), &other.auth_block(1, 2, ""), ""),
        Err(AuthCheckFailure::UnknownUser { .. })
    ));
}

#[test]
fn info_blob_round_trips_with_nul_padding() {
    let json = r#"{"randsalt":"abc123","devp2pver":"6.7.30","rtspport":554,"httpport":80}"#;
    let b64 = encrypt_info(json);
    let info = decrypt_info(&b64).unwrap();
    assert_eq!(info.rand_salt.as_deref(), Some("abc123"));
    assert_eq!(info.p2p_version.as_deref(), Some("6.7.30"));
    assert_eq!((info.rtsp_port, info.http_port), (Some(554), Some(80)));
}

#[test]
fn info_accepts_the_other_version_name_and_string_ports() {
    let b64 = encrypt_info(r#"{"devP2PVersion":"7.0","rtspport":"8554"}"#);
    let info = decrypt_info(&b64).unwrap();
    assert_eq!(info.p2p_version.as_deref(), Some("7.0"));
    assert_eq!(info.rtsp_port, Some(8554));
    assert_eq!(info.rand_salt, None);
}

#[test]
fn info_to_json_round_trips() {
    let info = DeviceInfo {
        rand_salt: Some("s".into()),
        p2p_version: Some("6.0.0".into()),
        rtsp_port: Some(554),
        http_port: Some(80),
        json: serde_json::json!({"extra": 1}),
    };
    let back = decrypt_info(&encrypt_info(&info.to_json())).unwrap();
    assert_eq!(back.rand_salt, info.rand_salt);
    assert_eq!(back.json["extra"], 1);
}

#[test]
fn info_that_is_not_json_is_an_error() {
    assert!(matches!(
        decrypt_info(&encrypt_info("not json")),
        Err(DevAuthError::BadJson { .. })
    ));
}

#[test]
fn rand_salt_comes_from_info_or_a_plain_element() {
    let body = XmlBody::new().with("Info", encrypt_info(r#"{"randsalt":"xyz"}"#));
    assert_eq!(
        rand_salt_from_info_body(&body).unwrap().as_deref(),
        Some("xyz")
    );
    let body = XmlBody::new().with("RandSalt", "plain");
    assert_eq!(
        rand_salt_from_info_body(&body).unwrap().as_deref(),
        Some("plain")
    );
    assert_eq!(rand_salt_from_info_body(&XmlBody::new()).unwrap(), None);
}

#[test]
fn debug_output_hides_secrets() {
    assert!(!format!("{:?}", key()).contains("E098"));
    assert!(!format!("{:?}", creds()).contains("pass123"));
}
