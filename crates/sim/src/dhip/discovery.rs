//! The DHDiscover responder on a loopback UDP socket: only well-framed DHIP
//! `DHDiscover.search` probes get an answer (bare JSON and anything else is ignored), sent
//! to the prober's address as `client.notifyDevInfo` with the device's identity and ports,
//! optionally several times and NUL-terminated. It never joins a multicast group.

use std::sync::Arc;

use dhip::frame::Terminator;
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tracing::debug;

use super::net::Shared;

/// The `deviceInfo` object for a device whose DHIP and HTTP ports are given.
pub fn device_info(shared: &Shared, port: u16, http_port: u16) -> Value {
    let d = shared.device();
    let id = d.identity();
    json!({
        "SerialNo": id.serial, "DeviceType": id.device_type, "DeviceClass": id.device_class,
        "Vendor": id.vendor, "Manufacturer": id.vendor, "Version": id.version,
        "MachineName": id.machine_name, "HttpPort": http_port, "Port": port,
        "VideoInputChannels": id.channels, "VideoOutputChannels": 0,
        "AlarmInputChannels": 0, "AlarmOutputChannels": 0, "RemoteVideoInputChannels": 0,
        "Find": "BC", "Init": 150, "UnLoginFuncMask": 0, "DeviceID": id.serial,
        "IPv4Address": {"IPAddress": "127.0.0.1", "SubnetMask": "255.0.0.0",
                         "DefaultGateway": "127.0.0.1", "DhcpEnable": false},
        "IPv6Address": {"IPAddress": "::1/128", "DefaultGateway": "::", "DhcpEnable": false},
    })
}

/// Answers probes on `socket` until the task is aborted.
pub async fn serve(socket: UdpSocket, shared: Arc<Shared>, port: u16, http_port: u16) {
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                debug!("dhip sim discovery: {e}");
                continue;
            }
        };
        if !shared.is_up() || !dhip::discovery::is_probe(&buf[..n]) {
            continue;
        }
        let mac = shared.device().identity().mac.clone();
        let term = if shared.opts.discovery_nul {
            Terminator::Nul
        } else {
            Terminator::None
        };
        let reply = dhip::discovery::reply(&device_info(&shared, port, http_port), &mac, term);
        for _ in 0..shared.opts.discovery_copies.max(1) {
            if let Err(e) = socket.send_to(&reply, from).await {
                debug!(%from, "dhip sim discovery: reply failed: {e}");
            }
        }
    }
}
