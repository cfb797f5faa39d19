//! The byte-bounded cache of the current GOP (every frame since the last keyframe).

use std::sync::Arc;

use crate::Frame;

/// Frames since the last sync point of the primary track, capped in bytes. When a GOP outgrows
/// the cap the cache empties and waits for the next keyframe.
#[derive(Debug)]
pub(crate) struct GopCache {
    frames: Vec<Arc<Frame>>,
    bytes: usize,
    max_bytes: usize,
    valid: bool,
}

impl GopCache {
    pub(crate) fn new(max_bytes: usize) -> Self {
        GopCache {
            frames: Vec::new(),
            bytes: 0,
            max_bytes,
            valid: false,
        }
    }

    pub(crate) fn push(&mut self, frame: &Arc<Frame>, is_sync: bool) {
        if is_sync {
            self.clear();
            self.valid = true;
        }
        if !self.valid {
            return;
        }
        if self.bytes + frame.data.len() > self.max_bytes {
            self.clear();
            return;
        }
        self.bytes += frame.data.len();
        self.frames.push(frame.clone());
    }

    pub(crate) fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.valid = false;
    }

    pub(crate) fn frames(&self) -> &[Arc<Frame>] {
        &self.frames
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn f(len: usize, key: bool) -> Arc<Frame> {
        Arc::new(Frame::new(0, 0, key, Bytes::from(vec![0u8; len])))
    }

    #[test]
    fn gop_cache_starts_at_keyframe_and_resets_on_next() {
        let mut g = GopCache::new(1000);
        g.push(&f(10, false), false);
        assert!(g.frames().is_empty());
        g.push(&f(10, true), true);
        g.push(&f(10, false), false);
        assert_eq!(g.frames().len(), 2);
        g.push(&f(10, true), true);
        assert_eq!(g.frames().len(), 1);
        assert_eq!(g.bytes(), 10);
    }

    #[test]
    fn gop_cache_empties_when_over_budget_until_next_keyframe() {
        let mut g = GopCache::new(100);
        g.push(&f(60, true), true);
        g.push(&f(60, false), false);
        assert!(g.frames().is_empty());
        g.push(&f(10, false), false);
        assert!(g.frames().is_empty());
        g.push(&f(10, true), true);
        assert_eq!(g.frames().len(), 1);
    }
}
