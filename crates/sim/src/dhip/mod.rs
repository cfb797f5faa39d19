//! A simulated Dahua device speaking DHIP (binary RPC2 over TCP), HTTP RPC2 with
//! RPC_Loadfile media, and DHDiscover over UDP, following §8 of `protocols/dahua-dhip.md`:
//! real two-stage login with the Default hash, lockout, keep-alive expiry, state-backed
//! methods (config, users, PTZ, file search, upgrader, events) with the firmware quirks as
//! policies, and a request log for assertions.
//!
//! Inside: `options` (every knob), `device` (one request in, one reply out; routing, objects,
//! subscriptions, overrides), `sessions` (login and session lifecycle), `state` (identity and
//! config tables), `users`, `ptz`, `files` (mediaFileFind), `upgrader`, `clock` (injectable
//! time), `rpc` (outcomes and error codes) and `record` (the request log).

pub mod clock;
pub mod device;
pub mod digest;
pub mod files;
pub mod options;
pub mod ptz;
pub mod record;
pub mod rpc;
pub mod sessions;
pub mod state;
pub mod upgrader;
pub mod users;

pub use device::{DeviceSnapshot, EVENT_SID};
pub use files::FileFixture;
pub use options::{
    DhipSimOptions, FragmentModel, FragmentReplies, HttpSession, JsonLayout, TimeStyle,
    UnknownMethod, VendorKey,
};
pub use ptz::{PtzPolicy, PtzSnapshot, StatusKey};
pub use record::RequestRecord;
pub use sessions::{Encryption, Session, Transport};
pub use state::DeviceIdentity;
pub use upgrader::{UpgradeState, UpgraderSnapshot};
pub use users::User;
