//! Realms: the TCP connections multiplexed over one session. Each realm has a state
//! (binding, awaiting the app's answer, open, closing), a bounded send buffer, and takes
//! its turn in a round-robin so that one busy realm cannot starve the others.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

/// Where a realm is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealmState {
    /// We sent BIND and wait for CONN or DISC.
    Binding,
    /// The peer sent BIND; the app has not accepted or refused it yet.
    Pending,
    /// CONN exchanged: data flows both ways.
    Open,
    /// We are closing: buffered data goes out, then DISC; done when the peer answers DISC
    /// or acknowledges ours.
    Closing,
}

/// Why a realm could not be opened.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RealmError {
    /// The realm id is in use on this session.
    #[error("realm {0:#010x} is already in use")]
    InUse(u32),
    /// The session already has its maximum number of realms.
    #[error("too many realms (at most {max})")]
    TooMany {
        /// `Config::max_realms`.
        max: usize,
    },
    /// The session is closed.
    #[error("the PTCP session is closed")]
    SessionClosed,
}

/// One realm's state and unsent bytes.
#[derive(Debug)]
pub(crate) struct Realm {
    pub state: RealmState,
    buf: BytesMut,
    /// A `send()` could not take everything; report `Writable` when space frees.
    blocked: bool,
    /// Our DISC has been framed (Closing only).
    pub disc_sent: bool,
}

/// The next thing a realm wants on the wire.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// A DATA payload; `writable` says the app should be told that space freed.
    Data {
        realm: u32,
        payload: Bytes,
        writable: bool,
    },
    /// The closing realm's DISC, after all its data.
    Disc { realm: u32 },
}

/// All realms of a session.
#[derive(Debug)]
pub(crate) struct Realms {
    map: BTreeMap<u32, Realm>,
    /// Last realm served by the round-robin.
    cursor: u32,
    buffer_limit: usize,
    max: usize,
}

impl Realms {
    /// An empty table with per-realm buffers of `buffer_limit` bytes and at most `max`
    /// realms.
    pub(crate) fn new(buffer_limit: usize, max: usize) -> Self {
        Realms {
            map: BTreeMap::new(),
            cursor: 0,
            buffer_limit,
            max,
        }
    }

    /// The state of `realm`, if it exists.
    pub(crate) fn state(&self, realm: u32) -> Option<RealmState> {
        self.map.get(&realm).map(|r| r.state)
    }

    /// The realm, if it exists.
    pub(crate) fn get_mut(&mut self, realm: u32) -> Option<&mut Realm> {
        self.map.get_mut(&realm)
    }

    /// Number of realms (in any state).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether another realm may be added.
    pub(crate) fn has_room(&self) -> bool {
        self.map.len() < self.max
    }

    /// Adds a realm in `state`.
    pub(crate) fn insert(&mut self, realm: u32, state: RealmState) -> Result<(), RealmError> {
        if self.map.contains_key(&realm) {
            return Err(RealmError::InUse(realm));
        }
        if !self.has_room() {
            return Err(RealmError::TooMany { max: self.max });
        }
        self.map.insert(
            realm,
            Realm {
                state,
                buf: BytesMut::new(),
                blocked: false,
                disc_sent: false,
            },
        );
        Ok(())
    }

    /// Removes a realm and its unsent bytes.
    pub(crate) fn remove(&mut self, realm: u32) -> Option<Realm> {
        self.map.remove(&realm)
    }

    /// Drops every realm.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Buffers as much of `data` as fits for `realm`; returns how much was taken.
    pub(crate) fn buffer(&mut self, realm: u32, data: &[u8]) -> usize {
        let limit = self.buffer_limit;
        let Some(r) = self.map.get_mut(&realm) else {
            return 0;
        };
        if !matches!(r.state, RealmState::Binding | RealmState::Open) {
            return 0;
        }
        let take = data.len().min(limit.saturating_sub(r.buf.len()));
        r.buf.extend_from_slice(&data[..take]);
        if take < data.len() {
            r.blocked = true;
        }
        take
    }

    /// Moves `realm` to Closing; unsent data of a realm that never opened is dropped.
    pub(crate) fn start_closing(&mut self, realm: u32) {
        if let Some(r) = self.map.get_mut(&realm) {
            if r.state != RealmState::Open {
                r.buf.clear();
            }
            r.state = RealmState::Closing;
            r.blocked = false;
        }
    }

    /// The next DATA chunk (at most `max_payload` bytes, only if `data_allowed`) or DISC,
    /// taking realms in turn after the last one served.
    pub(crate) fn next_outgoing(
        &mut self,
        max_payload: usize,
        data_allowed: bool,
    ) -> Option<Outgoing> {
        let wants = |r: &Realm| match r.state {
            RealmState::Open => data_allowed && !r.buf.is_empty(),
            RealmState::Closing => !r.disc_sent && (data_allowed || r.buf.is_empty()),
            RealmState::Binding | RealmState::Pending => false,
        };
        let after = (Bound::Excluded(self.cursor), Bound::Unbounded);
        let id = self
            .map
            .range(after)
            .chain(self.map.range(..=self.cursor))
            .find(|(_, r)| wants(r))
            .map(|(&id, _)| id)?;
        self.cursor = id;
        let limit = self.buffer_limit;
        let r = self.map.get_mut(&id).expect("realm just found");
        if r.buf.is_empty() {
            r.disc_sent = true;
            return Some(Outgoing::Disc { realm: id });
        }
        let n = r.buf.len().min(max_payload);
        let payload = r.buf.split_to(n).freeze();
        let writable = r.blocked && r.buf.len() <= limit / 2;
        if writable {
            r.blocked = false;
        }
        Some(Outgoing::Data {
            realm: id,
            payload,
            writable,
        })
    }

    /// Whether any realm has something to send.
    pub(crate) fn has_outgoing(&self) -> bool {
        self.map.values().any(|r| match r.state {
            RealmState::Open => !r.buf.is_empty(),
            RealmState::Closing => !r.disc_sent,
            _ => false,
        })
    }

    /// Ids of all realms.
    pub(crate) fn ids(&self) -> Vec<u32> {
        self.map.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_alternates_between_busy_realms() {
        let mut t = Realms::new(10_000, 8);
        for id in [1, 2, 3] {
            t.insert(id, RealmState::Open).unwrap();
            t.buffer(id, &[id as u8; 30]);
        }
        let order: Vec<u32> = std::iter::from_fn(|| t.next_outgoing(10, true))
            .map(|o| match o {
                Outgoing::Data { realm, .. } => realm,
                Outgoing::Disc { realm } => realm,
            })
            .collect();
        assert_eq!(order, [1, 2, 3, 1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn send_buffer_is_bounded_and_reports_writable_after_draining() {
        let mut t = Realms::new(100, 8);
        t.insert(7, RealmState::Open).unwrap();
        assert_eq!(t.buffer(7, &[0; 150]), 100);
        let first = t.next_outgoing(40, true).unwrap();
        assert!(matches!(
            first,
            Outgoing::Data {
                writable: false,
                ..
            }
        ));
        let second = t.next_outgoing(40, true).unwrap();
        assert!(matches!(second, Outgoing::Data { writable: true, .. }));
        assert_eq!(t.buffer(7, &[0; 150]), 80);
    }

    #[test]
    fn closing_realm_flushes_data_before_its_disc() {
        let mut t = Realms::new(100, 8);
        t.insert(5, RealmState::Open).unwrap();
        t.buffer(5, b"abc");
        t.start_closing(5);
        assert!(matches!(
            t.next_outgoing(40, true),
            Some(Outgoing::Data { realm: 5, .. })
        ));
        assert_eq!(t.next_outgoing(40, true), Some(Outgoing::Disc { realm: 5 }));
        assert_eq!(t.next_outgoing(40, true), None);
    }
}
