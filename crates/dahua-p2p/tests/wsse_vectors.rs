//! WSSE UsernameToken: the golden digests, the header format, verification and `Created`.

use dahua_p2p::dhhttp::Profile;
use dahua_p2p::wsse::{
    AUTHORIZATION_VALUE, AppCredentials, CreatedStyle, NonceStyle, UsernameToken, WsseError,
    format_created, parse_created, password_digest, verify,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn smartpss() -> AppCredentials {
    Profile::smartpss().credentials()
}

fn dmss() -> AppCredentials {
    Profile::dmss().credentials()
}

/// 2026-09-06T12:00:00Z.
const T0: i64 = 1_788_696_000;

#[test]
fn smartpss_golden_digest() {
    let c = smartpss();
    assert_eq!(
        password_digest("42", "2026-09-06T12:00:00Z", &c.username, &c.user_key),
        "2+go9D1pKW5ykn3ePUMZkhMmITo="
    );
}

#[test]
fn dmss_golden_digest_with_offset_created() {
    let c = dmss();
    assert_eq!(
        password_digest("42", "2026-09-06T12:00:00+03:00", &c.username, &c.user_key),
        "VSIOT9Z5Ht/rmuQ677AZ5CzIbOk="
    );
}

#[test]
fn header_value_has_the_four_quoted_fields() {
    let t = UsernameToken::sign(&smartpss(), "42", "2026-09-06T12:00:00Z");
    assert_eq!(
        t.header_value(),
        "UsernameToken Username=\"cba1b29e32cb17aa46b8ff9e73c7f40b\", \
         PasswordDigest=\"2+go9D1pKW5ykn3ePUMZkhMmITo=\", Nonce=\"42\", \
         Created=\"2026-09-06T12:00:00Z\""
    );
    assert_eq!(AUTHORIZATION_VALUE, "WSSE profile=\"UsernameToken\"");
}

#[test]
fn header_parses_back_in_any_order_and_spacing() {
    let t = UsernameToken::sign(&dmss(), "-17", "2026-09-06T12:00:00+03:00");
    assert_eq!(UsernameToken::parse(&t.header_value()).unwrap(), t);
    let h = r#"UsernameToken Created="c",Nonce="n" ,  PasswordDigest="d", Username="", Extra="x""#;
    let p = UsernameToken::parse(h).unwrap();
    assert_eq!((p.username.as_str(), p.nonce.as_str()), ("", "n"));
    assert_eq!((p.password_digest.as_str(), p.created.as_str()), ("d", "c"));
}

#[test]
fn amcrest_username_backslash_is_literal() {
    let t = UsernameToken::sign(
        &Profile::amcrest().credentials(),
        "1",
        "2026-01-01T00:00:00Z",
    );
    let p = UsernameToken::parse(&t.header_value()).unwrap();
    assert_eq!(p.username, "default\\1ee97e027b2140a19b08606dcede9b9e");
}

#[test]
fn malformed_headers_are_rejected() {
    for h in [
        "",
        "Digest Username=\"a\"",
        "UsernameToken Username=\"a\"",
        "UsernameToken Username=a, PasswordDigest=\"b\", Nonce=\"c\", Created=\"d\"",
        "UsernameToken Username=\"a\" PasswordDigest=\"b\", Nonce=\"c\", Created=\"d\"",
        "UsernameToken Username=\"a, PasswordDigest=\"b\"",
    ] {
        assert!(
            matches!(UsernameToken::parse(h), Err(WsseError::Malformed { .. })),
            "{h:?}"
        );
    }
}

#[test]
fn verify_accepts_a_fresh_token() {
    let created = format_created(T0, CreatedStyle::Utc);
    let t = UsernameToken::sign(&smartpss(), "7", &created);
    assert_eq!(
        verify(&smartpss(), &t.header_value(), T0 + 5, Some(60)).unwrap(),
        t
    );
}

#[test]
fn verify_rejects_another_pair() {
    let t = UsernameToken::sign(&dmss(), "7", "2026-09-06T12:00:00Z");
    assert_eq!(
        verify(&smartpss(), &t.header_value(), T0, None),
        Err(WsseError::UnknownUser {
            username: dmss().username
        })
    );
}

#[test]
fn verify_rejects_a_wrong_key() {
    let forged = AppCredentials::new(&smartpss().username, "not-the-key");
    let t = UsernameToken::sign(&forged, "7", "2026-09-06T12:00:00Z");
    assert!(matches!(
        verify(&smartpss(), &t.header_value(), T0, None),
        Err(WsseError::BadDigest { .. })
    ));
}

#[test]
fn verify_reports_clock_skew_after_the_digest() {
    let t = UsernameToken::sign(&smartpss(), "7", "2026-09-06T12:00:00Z");
    assert_eq!(
        verify(&smartpss(), &t.header_value(), T0 + 301, Some(300)),
        Err(WsseError::ClockSkew {
            created: "2026-09-06T12:00:00Z".into(),
            skew_secs: -301
        })
    );
    assert!(verify(&smartpss(), &t.header_value(), T0 + 300, Some(300)).is_ok());
    assert!(verify(&smartpss(), &t.header_value(), T0 + 100_000, None).is_ok());
}

#[test]
fn verify_checks_offset_created_in_utc() {
    let t = UsernameToken::sign(&dmss(), "42", "2026-09-06T12:00:00+03:00");
    assert!(verify(&dmss(), &t.header_value(), T0 - 3 * 3600, Some(1)).is_ok());
}

#[test]
fn created_utc_format() {
    assert_eq!(
        format_created(T0, CreatedStyle::Utc),
        "2026-09-06T12:00:00Z"
    );
    assert_eq!(format_created(0, CreatedStyle::Utc), "1970-01-01T00:00:00Z");
    assert_eq!(
        format_created(951_827_696, CreatedStyle::Utc),
        "2000-02-29T12:34:56Z"
    );
}

#[test]
fn created_offset_format_shows_local_time() {
    assert_eq!(
        format_created(T0 - 3 * 3600, CreatedStyle::Offset(3 * 3600)),
        "2026-09-06T12:00:00+03:00"
    );
    assert_eq!(
        format_created(T0, CreatedStyle::Offset(-(5 * 3600 + 30 * 60))),
        "2026-09-06T06:30:00-05:30"
    );
    assert_eq!(
        format_created(T0, CreatedStyle::Offset(0)),
        "2026-09-06T12:00:00+00:00"
    );
}

#[test]
fn created_parses_both_forms() {
    assert_eq!(parse_created("2026-09-06T12:00:00Z").unwrap(), T0);
    assert_eq!(parse_created("2026-09-06T15:00:00+03:00").unwrap(), T0);
    assert_eq!(parse_created("2026-09-06T06:30:00-0530").unwrap(), T0);
    assert_eq!(parse_created("2026-09-06T12:00:00.250Z").unwrap(), T0);
    assert_eq!(parse_created("2026-09-06T12:00:00").unwrap(), T0);
}

#[test]
fn created_rejects_impossible_dates() {
    for s in [
        "2026-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-09-06T24:00:00Z",
        "2026-09-06T12:00:00+3:00",
        "2026-09-06 12:00",
        "2026-09-06T12:00:00Q",
        "",
    ] {
        assert!(parse_created(s).is_err(), "{s:?}");
    }
}

#[test]
fn created_round_trips_over_centuries() {
    for unix in (-2_000_000_000i64..4_000_000_000).step_by(7_777_777) {
        for style in [
            CreatedStyle::Utc,
            CreatedStyle::Offset(-34_200),
            CreatedStyle::Offset(45_900),
        ] {
            assert_eq!(
                parse_created(&format_created(unix, style)).unwrap(),
                unix,
                "{unix} {style:?}"
            );
        }
    }
}

#[test]
fn nonce_styles_stay_in_range() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut negative = false;
    for _ in 0..1000 {
        let a = NonceStyle::NonNegative31.generate(&mut rng);
        assert!((0..1 << 31).contains(&a));
        let b = NonceStyle::Unsigned32.generate(&mut rng);
        assert!((0..1 << 32).contains(&b));
        let c = NonceStyle::Signed32.generate(&mut rng);
        assert!(i64::from(i32::MIN) <= c && c <= i64::from(i32::MAX));
        negative |= c < 0;
    }
    assert!(negative, "signed style draws negatives");
}
