//! `H264Slot`: the H.264 stream's parameter sets and the access units since its last
//! IDR picture, handed from one encoder to any number of viewers.
//!
//! An H.264 picture other than an IDR picture can only be decoded after the pictures it
//! refers to, so unlike the [`FrameSlot`](crate::slot::FrameSlot) this slot cannot keep
//! just the newest picture. It keeps the group of pictures (GOP) that began with the
//! latest IDR picture: the IDR picture and every access unit after it. A new IDR picture
//! drops the old group.
//!
//! Readers ask for "the access unit after sequence number N":
//!
//! * a new reader (N = 0) gets the group's IDR picture at once, then the rest of it;
//! * a reader whose next unit is still held gets it, so it sees every picture in order;
//! * a reader that fell so far behind that its next unit is gone (a new group began
//!   since) gets the newest group's IDR picture: it skips to a picture it can decode
//!   and never sees a broken one.
//!
//! Nothing is queued per reader: a reader holds a sequence number, and the units it is
//! writing through `Arc`s. What the slot holds is bounded by the encoder's IDR interval;
//! past [`MAX_GROUP_UNITS`] units or [`MAX_GROUP_BYTES`] bytes in one group (an encoder
//! that stopped making IDR pictures) the slot asks for a key frame and drops the group's
//! oldest units, so new readers wait for the next IDR picture instead of memory growing.
//!
//! The slot also carries demand back to the encoder: how many viewers read, and whether
//! one that joined wants a key frame now.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The most access units one group may hold (a minute at 60 frames per second, far past
/// the encoder's IDR interval).
pub const MAX_GROUP_UNITS: usize = 3600;

/// The most bytes one group's access units may hold together.
pub const MAX_GROUP_BYTES: usize = 64 << 20;

/// What a decoder needs before the first picture: the sequence and picture parameter
/// sets (NAL units without start codes) and the picture's size and rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    pub width: u16,
    pub height: u16,
    /// The nominal frame rate, for players that want one.
    pub fps: u32,
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
}

/// One coded picture.
#[derive(Debug)]
pub struct AccessUnit {
    seq: u64,
    key: bool,
    /// When the picture was captured (or reached the encoder).
    captured: Instant,
    /// The picture's NAL units, each behind its 4-byte big-endian length (as MP4
    /// samples are), without parameter sets.
    sample: Vec<u8>,
    config: Arc<StreamConfig>,
}

impl AccessUnit {
    /// Position in the stream; the first published unit is 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// True for an IDR picture, where decoding can start.
    pub fn is_key(&self) -> bool {
        self.key
    }

    pub fn captured(&self) -> Instant {
        self.captured
    }

    /// The picture's NAL units, each behind its 4-byte length.
    pub fn sample(&self) -> &[u8] {
        &self.sample
    }

    /// The parameter sets this picture was coded with.
    pub fn config(&self) -> &Arc<StreamConfig> {
        &self.config
    }
}

/// What a reader gets from [`H264Slot::next_after`].
#[derive(Debug)]
pub enum Next {
    Unit(Arc<AccessUnit>),
    /// Nothing new arrived within the timeout.
    TimedOut,
    /// The slot was closed: the server is stopping.
    Closed,
}

/// Why [`H264Slot::publish`] refused a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The stream must begin with an IDR picture.
    NoKeyYet,
}

/// The group of pictures since the last IDR picture.
#[derive(Default)]
struct Group {
    /// The group's units, oldest first; the first is an IDR picture unless the group
    /// outgrew its bounds.
    units: Vec<Arc<AccessUnit>>,
    bytes: usize,
    config: Option<Arc<StreamConfig>>,
    last_seq: u64,
    newest: Option<Instant>,
}

/// Holds the current group of pictures; see the module documentation.
#[derive(Default)]
pub struct H264Slot {
    group: Mutex<Group>,
    published: Condvar,
    closed: AtomicBool,
    viewers: AtomicU64,
    viewers_changed: Condvar,
    /// Whether a viewer asked for a key frame since the encoder last looked.
    key_wanted: AtomicBool,
    encoded: AtomicU64,
    skipped: AtomicU64,
    /// Which encoder fills the slot, for `/status`.
    encoder: &'static str,
}

/// A viewer's standing interest in the stream; dropping it ends the interest.
pub struct Watch<'a>(&'a H264Slot);

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::SeqCst);
        // Under the lock, so that the encoder's check and sleep cannot miss it.
        let _group = self.0.lock();
        self.0.viewers_changed.notify_all();
    }
}

impl H264Slot {
    pub fn new() -> H264Slot {
        H264Slot::default()
    }

    /// A slot that `encoder` ("hardware", "software") fills.
    pub fn filled_by(encoder: &'static str) -> H264Slot {
        H264Slot {
            encoder,
            ..H264Slot::default()
        }
    }

    /// Which encoder fills the slot ("" when not said).
    pub fn encoder(&self) -> &'static str {
        self.encoder
    }

    fn lock(&self) -> MutexGuard<'_, Group> {
        // A reader or the encoder that panicked left nothing half-done worth refusing.
        self.group.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a viewer while the returned guard lives, and asks for a key frame.
    pub fn watch(&self) -> Watch<'_> {
        self.viewers.fetch_add(1, Ordering::SeqCst);
        self.key_wanted.store(true, Ordering::SeqCst);
        let _group = self.lock();
        self.viewers_changed.notify_all();
        Watch(self)
    }

    /// Viewers reading now.
    pub fn viewers(&self) -> u64 {
        self.viewers.load(Ordering::SeqCst)
    }

    /// Sleeps until a viewer exists or the slot closes, at most `most`; true when a
    /// viewer exists.
    pub fn wait_for_viewers(&self, most: Duration) -> bool {
        let group = self.lock();
        let (_group, _) = self
            .viewers_changed
            .wait_timeout_while(group, most, |_| self.viewers() == 0 && !self.is_closed())
            .unwrap_or_else(|e| e.into_inner());
        self.viewers() > 0
    }

    /// True once since a viewer joined: the encoder should make a key frame.
    pub fn take_key_request(&self) -> bool {
        self.key_wanted.swap(false, Ordering::SeqCst)
    }

    /// Asks the encoder for a key frame (again: one it could not make yet).
    pub fn request_key(&self) {
        self.key_wanted.store(true, Ordering::SeqCst);
    }

    /// Access units published so far.
    pub fn encoded(&self) -> u64 {
        self.encoded.load(Ordering::SeqCst)
    }

    /// Pictures the encoder passed by because it was still busy with an older one.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::SeqCst)
    }

    /// Counts pictures the encoder passed by.
    pub fn count_skipped(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::SeqCst);
    }

    /// The parameter sets of the stream now, once an IDR picture was published.
    pub fn config(&self) -> Option<Arc<StreamConfig>> {
        self.lock().config.clone()
    }

    /// The sequence number of the newest unit published (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// When the newest unit was captured.
    pub fn newest_captured(&self) -> Option<Instant> {
        self.lock().newest
    }

    /// Publishes one access unit (see [`AccessUnit::sample`] for `sample`'s form) and
    /// wakes the readers. An IDR picture (`key`) begins a new group and must come with
    /// the parameter sets; the first unit must be one. Only one thread may publish.
    pub fn publish(
        &self,
        key: bool,
        captured: Instant,
        sample: Vec<u8>,
        config: Option<StreamConfig>,
    ) -> Result<u64, Refused> {
        let mut group = self.lock();
        let config = match (key, config, &group.config) {
            (true, Some(new), Some(old)) if **old == new => old.clone(),
            (true, Some(new), _) => Arc::new(new),
            (_, _, Some(old)) => old.clone(),
            (_, _, None) => return Err(Refused::NoKeyYet),
        };
        if key {
            group.units.clear();
            group.bytes = 0;
        }
        group.last_seq += 1;
        let unit = Arc::new(AccessUnit {
            seq: group.last_seq,
            key,
            captured,
            sample,
            config: config.clone(),
        });
        group.bytes += unit.sample.len();
        group.units.push(unit);
        group.config = Some(config);
        group.newest = Some(captured);
        // An encoder that makes no IDR pictures: ask for one, and keep memory bounded
        // (readers that lose their next unit wait for that IDR picture).
        if group.units.len() > MAX_GROUP_UNITS || group.bytes > MAX_GROUP_BYTES {
            self.request_key();
            while group.units.len() > 1
                && (group.units.len() > MAX_GROUP_UNITS || group.bytes > MAX_GROUP_BYTES)
            {
                let gone = group.units.remove(0);
                group.bytes -= gone.sample.len();
            }
        }
        let seq = group.last_seq;
        drop(group);
        self.encoded.fetch_add(1, Ordering::SeqCst);
        self.published.notify_all();
        Ok(seq)
    }

    /// Waits up to `timeout` for the unit after `seen` (0: a new reader); see the module
    /// documentation for which unit that is.
    pub fn next_after(&self, seen: u64, timeout: Duration) -> Next {
        self.wait_for(timeout, |group| {
            let first = group.units.first()?;
            let last = group.units.last()?;
            if seen >= last.seq {
                return None;
            }
            if seen >= first.seq {
                return Some(group.units[(seen + 1 - first.seq) as usize].clone());
            }
            // New, or behind past the group's start: from the group's IDR picture on.
            first.key.then(|| first.clone())
        })
    }

    /// Waits up to `timeout` for an IDR picture after `seen`: the current group's, if it
    /// began after `seen`, else the next group's.
    pub fn next_key_after(&self, seen: u64, timeout: Duration) -> Next {
        self.wait_for(timeout, |group| {
            let first = group.units.first()?;
            (first.key && first.seq > seen).then(|| first.clone())
        })
    }

    fn wait_for(
        &self,
        timeout: Duration,
        find: impl Fn(&Group) -> Option<Arc<AccessUnit>>,
    ) -> Next {
        let deadline = Instant::now() + timeout;
        let mut group = self.lock();
        loop {
            if self.is_closed() {
                return Next::Closed;
            }
            if let Some(unit) = find(&group) {
                return Next::Unit(unit);
            }
            let now = Instant::now();
            if now >= deadline {
                return Next::TimedOut;
            }
            group = self
                .published
                .wait_timeout(group, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Drops the held group (the encoder stopped: its pictures are stale for the next
    /// viewer, who waits for a new IDR picture instead). Sequence numbers go on.
    pub fn clear(&self) {
        let mut group = self.lock();
        group.units.clear();
        group.bytes = 0;
        group.newest = None;
    }

    /// Wakes every reader and the encoder for good.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _group = self.lock();
        self.published.notify_all();
        self.viewers_changed.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn config() -> StreamConfig {
        StreamConfig {
            width: 64,
            height: 48,
            fps: 30,
            sps: vec![0x67, 0x42, 0xC0, 0x1E],
            pps: vec![0x68, 0xCE, 0x3C, 0x80],
        }
    }

    fn put(slot: &H264Slot, key: bool) -> u64 {
        let sample = vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }];
        slot.publish(key, Instant::now(), sample, key.then(config))
            .unwrap()
    }

    fn unit(next: Next) -> Arc<AccessUnit> {
        match next {
            Next::Unit(u) => u,
            other => panic!("expected a unit, got {other:?}"),
        }
    }

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn the_stream_must_start_with_an_idr_picture() {
        let slot = H264Slot::new();
        let refused = slot.publish(false, Instant::now(), vec![0, 0, 0, 1, 0x41], None);
        assert_eq!(refused, Err(Refused::NoKeyYet));
        assert!(matches!(slot.next_after(0, NOW), Next::TimedOut));
        assert_eq!(put(&slot, true), 1);
        assert_eq!(slot.encoded(), 1);
        assert_eq!(*slot.config().unwrap(), config());
    }

    #[test]
    fn a_new_reader_starts_at_the_latest_idr_picture() {
        let slot = H264Slot::new();
        put(&slot, true);
        put(&slot, false);
        let idr = put(&slot, true);
        put(&slot, false);
        put(&slot, false);
        let first = unit(slot.next_after(0, NOW));
        assert_eq!(first.seq(), idr);
        assert!(first.is_key());
        // Then every unit of the group, in order.
        assert_eq!(unit(slot.next_after(idr, NOW)).seq(), idr + 1);
        assert_eq!(unit(slot.next_after(idr + 1, NOW)).seq(), idr + 2);
        assert!(matches!(slot.next_after(idr + 2, NOW), Next::TimedOut));
    }

    #[test]
    fn a_reader_behind_skips_to_the_next_idr_picture_never_to_a_broken_one() {
        let slot = H264Slot::new();
        put(&slot, true);
        put(&slot, false);
        put(&slot, false);
        // The reader has sent units 1 and 2 when a new group begins.
        let idr = put(&slot, true);
        put(&slot, false);
        let next = unit(slot.next_after(2, NOW));
        assert_eq!(next.seq(), idr, "unit 3 is gone: skip to the IDR picture");
        assert!(next.is_key());
    }

    #[test]
    fn a_reader_asking_for_a_key_waits_for_a_new_group() {
        let slot = Arc::new(H264Slot::new());
        put(&slot, true);
        put(&slot, false);
        assert_eq!(unit(slot.next_key_after(0, NOW)).seq(), 1);
        assert!(matches!(slot.next_key_after(1, NOW), Next::TimedOut));
        let waiter = {
            let slot = slot.clone();
            thread::spawn(move || unit(slot.next_key_after(2, Duration::from_secs(60))).seq())
        };
        put(&slot, false);
        let idr = put(&slot, true);
        assert_eq!(waiter.join().unwrap(), idr);
    }

    #[test]
    fn a_group_without_idr_pictures_stays_bounded_and_asks_for_one() {
        let slot = H264Slot::new();
        put(&slot, true);
        assert!(!slot.take_key_request());
        for _ in 0..MAX_GROUP_UNITS + 10 {
            put(&slot, false);
        }
        assert_eq!(slot.lock().units.len(), MAX_GROUP_UNITS);
        assert!(
            slot.take_key_request(),
            "the encoder is asked for an IDR picture"
        );
        // A new reader cannot start inside the group: it waits for the IDR picture.
        assert!(matches!(slot.next_after(0, NOW), Next::TimedOut));
        let big = vec![0u8; MAX_GROUP_BYTES / 2 + 1];
        slot.publish(false, Instant::now(), big.clone(), None)
            .unwrap();
        slot.publish(false, Instant::now(), big, None).unwrap();
        assert!(slot.lock().bytes <= MAX_GROUP_BYTES);
    }

    #[test]
    fn watchers_ask_for_a_key_frame_and_wake_the_encoder() {
        let slot = Arc::new(H264Slot::new());
        assert!(!slot.wait_for_viewers(Duration::from_millis(10)));
        let encoder = {
            let slot = slot.clone();
            thread::spawn(move || slot.wait_for_viewers(Duration::from_secs(60)))
        };
        thread::sleep(Duration::from_millis(20));
        let watch = slot.watch();
        assert!(encoder.join().unwrap());
        assert_eq!(slot.viewers(), 1);
        assert!(slot.take_key_request());
        assert!(!slot.take_key_request(), "once per request");
        drop(watch);
        assert_eq!(slot.viewers(), 0);
    }

    #[test]
    fn close_wakes_readers_and_the_encoder() {
        let slot = Arc::new(H264Slot::new());
        let reader = {
            let slot = slot.clone();
            thread::spawn(move || {
                matches!(slot.next_after(0, Duration::from_secs(60)), Next::Closed)
            })
        };
        let encoder = {
            let slot = slot.clone();
            thread::spawn(move || slot.wait_for_viewers(Duration::from_secs(60)))
        };
        thread::sleep(Duration::from_millis(20));
        slot.close();
        assert!(reader.join().unwrap());
        assert!(!encoder.join().unwrap());
    }
}
