//! Software JPEG on several threads: a fixed pool of workers, each with its own
//! [`SoftwareEncoder`], so that a 4-core Pi encodes up to four pictures at once.
//!
//! The source hands in a picture ([`EncodePool::submit_rgb`], [`submit_planes`]); it is
//! copied into a recycled buffer and numbered in the order it came (its capture order).
//! A worker encodes it and publishes the JPEG at once, through [`JpegOut`], from its
//! own thread.
//!
//! Ordering: pictures leave in capture order, newest wins. A worker publishes under one
//! lock that keeps the number of the newest picture published; a picture older than that
//! one is dropped, never published after it. So viewers never see time go backwards;
//! a slow picture that a faster, newer one overtook is lost instead.
//!
//! Bounds: at most one picture per worker in flight and one waiting. When every worker
//! is busy and one picture waits, a new picture replaces it, and the one replaced is
//! counted as skipped. (A picture handed in while a worker is free but not yet awake
//! waits for it instead: it does not replace the one that worker is about to take.) The
//! buffers (workers + 2 at most) are reused: nothing is allocated per picture once the
//! pool has run for a few pictures at one size.
//!
//! A pool that turns pictures ([`EncodePool::with_options`]) turns them on the workers,
//! each into a buffer of its own, so that the turning is shared out like the encoding;
//! the pictures published are the turned size.
//!
//! Idle workers sleep on a condition variable and use no CPU. Dropping the pool stops
//! and joins its threads; the picture waiting, if any, is dropped with it.
//!
//! [`submit_planes`]: EncodePool::submit_planes

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::software::{check_planes, split_planes};
use super::turn::Turner;
use super::{Backend, EncodeError, RawFrame, RawLayout, SoftwareEncoder};
use crate::picture::Orientation;

/// Stack of a worker thread: encoders keep their buffers on the heap.
const WORKER_STACK: usize = 256 * 1024;

/// Where finished pictures go, called from the worker that encoded them.
pub trait JpegOut: Send + Sync {
    /// A JPEG picture, in capture order.
    fn publish(&self, jpeg: &[u8], width: u16, height: u16);
    /// A picture that could not be encoded.
    fn encode_failed(&self, error: &EncodeError);
    /// A picture dropped: every worker was busy, or a newer one went out first.
    fn skipped(&self);
}

/// What a buffer holds.
#[derive(Clone, Copy)]
enum Kind {
    /// Packed RGB, `width * height * 3` bytes.
    Rgb,
    /// The planes of `layout` one after the other, rows `stride` bytes apart.
    Raw { layout: RawLayout, stride: usize },
}

/// A picture waiting for, or in the hands of, a worker.
struct Job {
    seq: u64,
    data: Vec<u8>,
    kind: Kind,
    width: u16,
    height: u16,
}

struct Queue {
    /// Pictures no worker has taken yet, oldest first: at most one more than the
    /// workers that are free.
    waiting: VecDeque<Job>,
    /// Workers encoding a picture now.
    busy: usize,
    workers: usize,
    /// Buffers to reuse.
    spare: Vec<Vec<u8>>,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    /// The number of the newest picture published; held while publishing.
    published: Mutex<u64>,
    out: Arc<dyn JpegOut>,
    /// Pictures replaced while waiting, or finished after a newer one was published.
    skipped: AtomicU64,
    /// How the workers turn each picture before encoding it.
    orientation: Orientation,
}

impl Shared {
    fn skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        self.out.skipped();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fixed number of encoding threads; see the module documentation.
pub struct EncodePool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    next_seq: u64,
}

impl EncodePool {
    /// Starts `workers` threads (at least one) encoding at `quality`, each with the
    /// fastest software back end built in.
    pub fn start(
        workers: usize,
        quality: u8,
        out: Arc<dyn JpegOut>,
    ) -> std::io::Result<EncodePool> {
        EncodePool::with_backend(workers, quality, Backend::best(), out)
    }

    /// [`start`](Self::start) with the workers on `backend` (see
    /// [`SoftwareEncoder::with_backend`]).
    pub fn with_backend(
        workers: usize,
        quality: u8,
        backend: Backend,
        out: Arc<dyn JpegOut>,
    ) -> std::io::Result<EncodePool> {
        let upright = Orientation::default();
        EncodePool::with_options(workers, quality, backend, upright, out)
    }

    /// [`with_backend`](Self::with_backend), the workers turning every picture as
    /// `orientation` says before encoding it.
    pub fn with_options(
        workers: usize,
        quality: u8,
        backend: Backend,
        orientation: Orientation,
        out: Arc<dyn JpegOut>,
    ) -> std::io::Result<EncodePool> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                busy: 0,
                workers: workers.max(1),
                spare: Vec::new(),
                stop: false,
            }),
            work: Condvar::new(),
            published: Mutex::new(0),
            out,
            skipped: AtomicU64::new(0),
            orientation,
        });
        let mut pool = EncodePool {
            shared,
            threads: Vec::new(),
            next_seq: 0,
        };
        for i in 0..workers.max(1) {
            let shared = pool.shared.clone();
            let encoder = SoftwareEncoder::with_backend(quality, backend);
            let thread = std::thread::Builder::new()
                .name(format!("encode-{i}"))
                .stack_size(WORKER_STACK)
                .spawn(move || work(&shared, encoder))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// How many threads encode.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// Pictures dropped because every worker was busy, or because a newer one was
    /// published first.
    pub fn skipped(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// Hands in packed RGB (3 bytes per pixel); the error says why it was refused.
    pub fn submit_rgb(&mut self, rgb: &[u8], width: u16, height: u16) -> Result<(), EncodeError> {
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected {
            return Err(EncodeError(format!(
                "{width}x{height} RGB needs {expected} bytes, got {}",
                rgb.len()
            )));
        }
        self.submit(Kind::Rgb, width, height, |buf| buf.extend_from_slice(rgb));
        Ok(())
    }

    /// Hands in a raw picture whose planes lie apart; see
    /// [`SoftwareEncoder::encode_planes`].
    pub fn submit_planes(&mut self, frame: RawFrame<'_>) -> Result<(), EncodeError> {
        let (stride, needed) = check_planes(
            &frame.planes,
            frame.layout,
            frame.width,
            frame.height,
            frame.stride,
        )?;
        let kind = Kind::Raw {
            layout: frame.layout,
            stride,
        };
        self.submit(kind, frame.width, frame.height, |buf| {
            for (plane, &n) in frame.planes.iter().zip(&needed) {
                buf.extend_from_slice(&plane[..n]);
            }
        });
        Ok(())
    }

    /// Copies a picture into a spare buffer (outside the lock) and makes it the one
    /// waiting, replacing an older one that no worker took.
    fn submit(&mut self, kind: Kind, width: u16, height: u16, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut data = lock(&self.shared.queue).spare.pop().unwrap_or_default();
        data.clear();
        fill(&mut data);
        self.next_seq += 1;
        let job = Job {
            seq: self.next_seq,
            data,
            kind,
            width,
            height,
        };
        let mut queue = lock(&self.shared.queue);
        if queue.busy + queue.waiting.len() > queue.workers {
            if let Some(old) = queue.waiting.pop_front() {
                queue.spare.push(old.data);
                self.shared.skip();
            }
        }
        queue.waiting.push_back(job);
        drop(queue);
        self.shared.work.notify_one();
    }
}

impl Drop for EncodePool {
    fn drop(&mut self) {
        lock(&self.shared.queue).stop = true;
        self.shared.work.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A worker: takes the waiting picture, encodes it, publishes it unless a newer one
/// went out first, and sleeps when there is nothing to do.
fn work(shared: &Shared, mut encoder: SoftwareEncoder) {
    let mut turner = Turner::new(shared.orientation);
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if queue.stop {
                    return;
                }
                if let Some(job) = queue.waiting.pop_front() {
                    queue.busy += 1;
                    break job;
                }
                queue = shared.work.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        let (width, height) = (job.width, job.height);
        let (planes, layout, stride) = match job.kind {
            Kind::Rgb => (
                [&job.data[..], &[], &[]],
                RawLayout::Rgb24,
                width as usize * 3,
            ),
            Kind::Raw { layout, stride } => {
                let (planes, stride) = split_planes(&job.data, layout, width, height, stride);
                (planes, layout, stride)
            }
        };
        let frame = RawFrame {
            planes,
            layout,
            width,
            height,
            stride,
        };
        let encoded = turner.encode(&mut encoder, frame);
        // The picture is encoded: its buffer and its place go back before publishing,
        // so that a source told of this picture finds the worker free.
        let mut queue = lock(&shared.queue);
        queue.busy -= 1;
        queue.spare.push(job.data);
        drop(queue);
        match encoded {
            Ok((jpeg, width, height)) => {
                let mut newest = lock(&shared.published);
                if job.seq > *newest {
                    shared.out.publish(jpeg, width, height);
                    *newest = job.seq;
                } else {
                    shared.skip();
                }
            }
            Err(e) => shared.out.encode_failed(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Keeps what the pool publishes: each picture's first pixel row as decoded (only
    /// its width, as a row of zeros, for the large ones).
    #[derive(Default)]
    struct Kept {
        pictures: Mutex<Vec<Vec<u8>>>,
        failed: AtomicU64,
        skipped: AtomicU64,
    }

    impl JpegOut for Kept {
        fn publish(&self, jpeg: &[u8], width: u16, _height: u16) {
            assert_eq!(crate::jpeg::inspect(jpeg).unwrap().width, width);
            let row = if width > 64 {
                vec![0; width as usize * 3]
            } else {
                let pixels = zune_jpeg::JpegDecoder::new(jpeg).decode().unwrap();
                pixels[..width as usize * 3].to_vec()
            };
            lock(&self.pictures).push(row);
        }
        fn encode_failed(&self, _error: &EncodeError) {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        fn skipped(&self) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A 64x16 grey picture whose brightness says its number `n` (in steps of 8).
    fn numbered(n: u8) -> Vec<u8> {
        vec![n * 8; 64 * 16 * 3]
    }

    /// Waits until `kept` holds `n` pictures or two minutes pass (the slow picture takes
    /// seconds in a debug build, and many more on a machine busy with other builds).
    fn wait_for(kept: &Kept, n: usize) {
        wait_until(kept, |pictures| pictures.len() >= n);
    }

    /// Waits until `done` says yes of the pictures `kept` holds, or two minutes pass.
    fn wait_until(kept: &Kept, done: impl Fn(&[Vec<u8>]) -> bool) {
        let until = Instant::now() + Duration::from_secs(120);
        while !done(&lock(&kept.pictures)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn publishes_in_order_and_never_goes_back() {
        let kept = Arc::new(Kept::default());
        let mut pool = EncodePool::start(3, 90, kept.clone()).unwrap();
        assert_eq!(pool.workers(), 3);
        for n in 1..=30 {
            pool.submit_rgb(&numbered(n), 64, 16).unwrap();
        }
        // The last one is always encoded: nothing newer replaces it.
        wait_until(&kept, |pictures| {
            pictures
                .last()
                .is_some_and(|p| (p[0] as i32 - 240).abs() <= 4)
        });
        drop(pool);
        let pictures = lock(&kept.pictures);
        let numbers: Vec<u8> = pictures.iter().map(|p| (p[0] + 4) / 8).collect();
        assert_eq!(numbers.last(), Some(&30), "{numbers:?}");
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "published out of order: {numbers:?}"
        );
    }

    #[test]
    fn a_slow_picture_overtaken_by_newer_ones_is_dropped() {
        let kept = Arc::new(Kept::default());
        let mut pool = EncodePool::start(3, 90, kept.clone()).unwrap();
        // Picture 1 is slow to encode; 2 and 3 are small and quick, and overtake it
        // unless the machine is so busy that their workers start too late.
        let (slow, w, h) = slow_picture();
        pool.submit_rgb(&slow, w, h).unwrap();
        wait_busy(&pool, 1);
        pool.submit_rgb(&numbered(2), 64, 16).unwrap();
        pool.submit_rgb(&numbered(3), 64, 16).unwrap();
        // Picture 3 is published whatever else is (nothing newer can overtake it).
        wait_until(&kept, |pictures| {
            pictures
                .last()
                .is_some_and(|p| p.len() == 64 * 3 && (p[0] + 4) / 8 == 3)
        });
        // Joining waits for the slow one to finish.
        drop(pool);
        let pictures = lock(&kept.pictures);
        // The large picture is number 1; the small ones carry theirs.
        let numbers: Vec<u8> = pictures
            .iter()
            .map(|p| if p.len() > 64 * 3 { 1 } else { (p[0] + 4) / 8 })
            .collect();
        let skipped = kept.skipped.load(Ordering::Relaxed);
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "published out of order: {numbers:?}"
        );
        assert_eq!(numbers.last(), Some(&3), "{numbers:?}");
        assert_eq!(numbers.len() as u64 + skipped, 3, "{numbers:?}");
    }

    /// Waits until `n` workers have taken a picture.
    fn wait_busy(pool: &EncodePool, n: usize) {
        let until = Instant::now() + Duration::from_secs(60);
        while lock(&pool.shared.queue).busy < n {
            assert!(Instant::now() < until, "no worker took the picture");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A picture large and full of detail, slow to encode.
    fn slow_picture() -> (Vec<u8>, u16, u16) {
        let (w, h) = (4096u16, 2048u16);
        let mut seed = 1u32;
        let noise = (0..w as usize * h as usize * 3)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect();
        (noise, w, h)
    }

    #[test]
    fn with_every_worker_busy_the_newest_picture_replaces_the_waiting_one() {
        let kept = Arc::new(Kept::default());
        let mut pool = EncodePool::start(1, 90, kept.clone()).unwrap();
        let (slow, w, h) = slow_picture();
        pool.submit_rgb(&slow, w, h).unwrap();
        wait_busy(&pool, 1);
        // The one worker is busy: 2 waits, 3 replaces it, 4 replaces 3.
        for n in 2..=4 {
            pool.submit_rgb(&numbered(n), 64, 16).unwrap();
        }
        wait_for(&kept, 2);
        drop(pool);
        let pictures = lock(&kept.pictures);
        let widths: Vec<usize> = pictures.iter().map(|p| p.len() / 3).collect();
        assert_eq!(widths, [4096, 64]);
        assert_eq!((pictures[1][0] + 4) / 8, 4, "the newest one was kept");
        assert_eq!(kept.skipped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn bad_pictures_are_refused_at_once() {
        let kept = Arc::new(Kept::default());
        let mut pool = EncodePool::start(2, 90, kept.clone()).unwrap();
        assert!(pool.submit_rgb(&[0; 10], 64, 16).is_err());
        let y = vec![0u8; 64 * 16];
        let e = pool
            .submit_planes(RawFrame {
                planes: [&y, &y[..10], &y],
                layout: RawLayout::Yuv420,
                width: 64,
                height: 16,
                stride: 64,
            })
            .unwrap_err();
        assert!(e.to_string().contains("needs planes"), "{e}");
        // A good YUYV picture goes through and decodes at its size.
        let yuyv = vec![128u8; 64 * 2 * 16];
        pool.submit_planes(RawFrame {
            planes: [&yuyv, &[], &[]],
            layout: RawLayout::Yuyv,
            width: 64,
            height: 16,
            stride: 128,
        })
        .unwrap();
        wait_for(&kept, 1);
        assert_eq!(lock(&kept.pictures).len(), 1);
        assert_eq!(kept.failed.load(Ordering::Relaxed), 0);
    }
}
