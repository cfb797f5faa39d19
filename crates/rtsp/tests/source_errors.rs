//! `RtspSource` failures are classified into `SourceErrorKind`s a user can act on, and their
//! messages name the camera without leaking credentials.

mod source_support;

use std::time::Duration;

use media::SourceErrorKind;
use rtsp::source::{MediaSelection, RtspSourceOptions};
use source_support::{GstServer, TestMedia, collect, open};

#[tokio::test]
async fn wrong_password_is_an_auth_error() {
    let server = GstServer::file_with_auth(TestMedia::Mjpeg, "admin", "s3cret").await;
    let e = open(
        &server.url_with_creds("admin", "wrong-pw"),
        RtspSourceOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Auth, "{e}");
    assert!(e.message.contains(&server.url), "{e}");
    assert!(!e.message.contains("wrong-pw"), "password leaked: {e}");
}

#[tokio::test]
async fn missing_credentials_are_an_auth_error() {
    let server = GstServer::file_with_auth(TestMedia::Mjpeg, "admin", "s3cret").await;
    let e = open(&server.url, RtspSourceOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Auth, "{e}");
}

#[tokio::test]
async fn credentials_from_the_url_authenticate_and_are_stripped() {
    let server = GstServer::file_with_auth(TestMedia::Mjpeg, "admin", "s3cret").await;
    let url = server.url_with_creds("admin", "s3cret");
    let source = rtsp::source::RtspSource::new(&url, RtspSourceOptions::default()).unwrap();
    assert_eq!(media::Source::describe(&source), server.url);
    let mut s = source.open().await.unwrap();
    assert_eq!(s.url().as_str(), server.url);
    let (_, frames) = collect(&mut s, 5).await;
    assert!(frames.len() >= 5);
}

#[tokio::test]
async fn credentials_from_options_authenticate() {
    let server = GstServer::file_with_auth(TestMedia::Mjpeg, "admin", "s3cret").await;
    let options = RtspSourceOptions {
        username: Some("admin".into()),
        password: Some("s3cret".into()),
        ..Default::default()
    };
    let mut s = open(&server.url, options).await.unwrap();
    let (_, frames) = collect(&mut s, 5).await;
    assert!(frames.len() >= 5);
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("rtsp://user:pw@127.0.0.1:{port}/cam");
    let e = open(&url, RtspSourceOptions::default()).await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Connect, "{e}");
    assert!(
        e.message.contains(&format!("rtsp://127.0.0.1:{port}/cam")),
        "{e}"
    );
    assert!(!e.message.contains("pw"), "password leaked: {e}");
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    let options = RtspSourceOptions {
        connect_timeout_s: 1.0,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let e = open(&format!("rtsp://127.0.0.1:{port}/cam"), options)
        .await
        .unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Timeout, "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    hold.abort();
}

#[tokio::test]
async fn an_unknown_path_is_a_protocol_error() {
    let server = GstServer::file(TestMedia::Mjpeg).await;
    let url = server.url.replace("/cam", "/nope");
    let e = open(&url, RtspSourceOptions::default()).await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Protocol, "{e}");
    assert!(e.message.contains("/nope"), "{e}");
}

#[tokio::test]
async fn a_camera_without_a_usable_track_is_a_protocol_error() {
    // Linear PCM is not a codec camgate carries.
    let server = GstServer::launch(
        "( audiotestsrc is-live=true ! audioconvert ! audio/x-raw,rate=8000,channels=1 \
         ! rtpL16pay name=pay0 )",
    )
    .await;
    let e = open(&server.url, RtspSourceOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Protocol, "{e}");
    assert!(e.message.contains("no usable track"), "{e}");
    assert!(e.message.contains("audio/l16"), "{e}");
}

#[tokio::test]
async fn asking_for_audio_from_a_video_only_camera_is_a_protocol_error() {
    let server = GstServer::file(TestMedia::Mjpeg).await;
    let options = RtspSourceOptions {
        media: MediaSelection::Audio,
        ..Default::default()
    };
    let e = open(&server.url, options).await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Protocol, "{e}");
}

#[tokio::test]
async fn a_server_that_goes_away_ends_the_session() {
    let server = GstServer::file(TestMedia::Mjpeg).await;
    let options = RtspSourceOptions {
        read_timeout_s: 5.0,
        ..Default::default()
    };
    let mut s = open(&server.url, options).await.unwrap();
    s.frame().await.unwrap();
    drop(server);
    let e = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = s.frame().await {
                break e;
            }
        }
    })
    .await
    .expect("an error within 10 s");
    assert_eq!(e.kind, SourceErrorKind::Ended, "{e}");
}

#[tokio::test]
async fn a_camera_that_stops_sending_media_times_out() {
    let server = GstServer::file(TestMedia::Mjpeg).await;
    let options = RtspSourceOptions {
        read_timeout_s: 1.5,
        ..Default::default()
    };
    let mut s = open(&server.url, options).await.unwrap();
    s.frame().await.unwrap();
    // Frozen, the server keeps the TCP connection open but sends nothing.
    server.freeze();
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(e) = s.frame().await {
                break e;
            }
        }
    })
    .await
    .expect("an error within 10 s");
    assert_eq!(e.kind, SourceErrorKind::Timeout, "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
