//! One V4L2 buffer queue: asking the driver for buffers, mapping them into our memory (or
//! keeping them as slots for DMABUF buffers imported with each picture), queueing and
//! dequeueing them, starting and stopping the stream, and giving them all back.
//!
//! The same queue serves a capture device and both queues of a memory-to-memory device,
//! in the single-planar and the multi-planar API (pictures held in one plane). What a
//! buffer holds, and when the driver may touch it, is the owner's business: the queue
//! lends a mapped buffer's bytes only to a caller that vouches the driver leaves it
//! alone (see [`BufferQueue::bytes`]).

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use nix::libc;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use super::sys::{self, call, zeroed};

/// A failed call while setting buffers up, and which call it was.
#[derive(Debug)]
pub struct CallError {
    /// The ioctl or system call, as in `VIDIOC_QUERYBUF` or `mmap`.
    pub call: &'static str,
    pub err: io::Error,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.call, self.err)
    }
}

impl std::error::Error for CallError {}

/// One driver buffer mapped into our memory; unmapped when dropped.
struct Mapping {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

// SAFETY: the pointer is this process's own mapping of a driver buffer; nothing ties it to
// the thread that made it, and its bytes are reached only through the queue's `&self` or
// `&mut self`, so the mapping may move to another thread.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `mmap` in `BufferQueue::map` with this length,
        // and no slice into it outlives the borrow of its queue that lent it.
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

/// The buffers of one queue (one buffer type) of an open device node.
pub struct BufferQueue {
    /// The buffer type, such as `V4L2_BUF_TYPE_VIDEO_CAPTURE`.
    kind: u32,
    /// `V4L2_MEMORY_MMAP` or `V4L2_MEMORY_DMABUF`.
    memory: u32,
    /// The queue speaks the multi-planar API.
    mplane: bool,
    /// One mapping per buffer (none for imported DMABUF buffers).
    maps: Vec<Mapping>,
    /// How many buffers the driver gave.
    count: u32,
}

impl BufferQueue {
    /// A queue of buffer type `kind` with `memory` (`V4L2_MEMORY_MMAP` or
    /// `V4L2_MEMORY_DMABUF`); it holds no buffers until [`request`](Self::request).
    pub fn new(kind: u32, memory: u32, mplane: bool) -> BufferQueue {
        BufferQueue {
            kind,
            memory,
            mplane,
            maps: Vec::new(),
            count: 0,
        }
    }

    /// The buffer type.
    pub fn kind(&self) -> u32 {
        self.kind
    }

    /// `V4L2_MEMORY_MMAP` or `V4L2_MEMORY_DMABUF`.
    pub fn memory(&self) -> u32 {
        self.memory
    }

    /// How many buffers (for imported DMABUF, slots) the driver gave.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Asks the driver for `count` buffers (`VIDIOC_REQBUFS`); returns how many it gave,
    /// which may be fewer, or none.
    pub fn request(&mut self, fd: BorrowedFd<'_>, count: u32) -> io::Result<u32> {
        let mut req: sys::v4l2_requestbuffers = zeroed();
        req.count = count;
        req.type_ = self.kind;
        req.memory = self.memory;
        // SAFETY: the descriptor is open; `req` is a v4l2_requestbuffers.
        call(|| unsafe { sys::vidioc_reqbufs(fd.as_raw_fd(), &mut req) })?;
        self.count = req.count;
        Ok(req.count)
    }

    /// Maps every buffer the driver gave into our memory, for reading and writing. A queue
    /// of imported DMABUF buffers has nothing to map: its buffers come with each picture.
    pub fn map(&mut self, fd: BorrowedFd<'_>) -> Result<(), CallError> {
        if self.memory != sys::V4L2_MEMORY_MMAP {
            return Ok(());
        }
        let failed = |call: &'static str| move |err: io::Error| CallError { call, err };
        let mut maps = Vec::with_capacity(self.count as usize);
        for index in 0..self.count {
            let mut plane: sys::v4l2_plane = zeroed();
            let mut buf = self.blank_buffer(index, &mut plane);
            // SAFETY: the descriptor is open; `buf` names buffer `index` and, in the
            // multi-planar API, points at `plane`, which lives until after the call.
            call(|| unsafe { sys::vidioc_querybuf(fd.as_raw_fd(), &mut buf) })
                .map_err(failed("VIDIOC_QUERYBUF"))?;
            let (len, offset) = if self.mplane {
                // SAFETY: for MMAP buffers the driver sets the plane's `mem_offset`.
                (plane.length, unsafe { plane.m.mem_offset })
            } else {
                // SAFETY: for MMAP buffers the driver sets `offset`.
                (buf.length, unsafe { buf.m.offset })
            };
            let len = NonZeroUsize::new(len as usize).ok_or_else(|| {
                failed("VIDIOC_QUERYBUF")(io::Error::other("the driver gave an empty buffer"))
            })?;
            // SAFETY: maps `len` bytes of the driver's buffer at its offset, shared, for
            // reading and writing; the mapping is unmapped when its `Mapping` drops.
            let ptr = unsafe {
                mmap(
                    None,
                    len,
                    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                    MapFlags::MAP_SHARED,
                    fd,
                    offset as libc::off_t,
                )
            }
            .map_err(|e| failed("mmap")(io::Error::from(e)))?;
            maps.push(Mapping {
                ptr,
                len: len.get(),
            });
        }
        self.maps = maps;
        Ok(())
    }

    /// A buffer description for `index` on this queue; `plane` receives the plane data in
    /// the multi-planar API and must outlive every ioctl that uses the result.
    pub fn blank_buffer(&self, index: u32, plane: &mut sys::v4l2_plane) -> sys::v4l2_buffer {
        let mut buf: sys::v4l2_buffer = zeroed();
        buf.index = index;
        buf.type_ = self.kind;
        buf.memory = self.memory;
        buf.field = sys::V4L2_FIELD_NONE;
        if self.mplane {
            buf.m.planes = (plane as *mut sys::v4l2_plane).cast();
            buf.length = 1;
        }
        buf
    }

    /// Hands mapped buffer `index` to the driver as it is (`VIDIOC_QBUF`): for a queue
    /// the driver fills.
    pub fn queue(&self, fd: BorrowedFd<'_>, index: u32) -> io::Result<()> {
        let mut plane: sys::v4l2_plane = zeroed();
        let mut buf = self.blank_buffer(index, &mut plane);
        Self::queue_buffer(fd, &mut buf)
    }

    /// Hands the buffer `buf` describes to the driver (`VIDIOC_QBUF`); `buf` comes from
    /// [`blank_buffer`](Self::blank_buffer), with what the picture needs filled in.
    pub fn queue_buffer(fd: BorrowedFd<'_>, buf: &mut sys::v4l2_buffer) -> io::Result<()> {
        // SAFETY: the descriptor is open; `buf` names a buffer of this queue and, in the
        // multi-planar API, points at a plane that the caller keeps alive for the call.
        call(|| unsafe { sys::vidioc_qbuf(fd.as_raw_fd(), buf) })
    }

    /// Takes back one buffer the driver is done with, without waiting (`VIDIOC_DQBUF`):
    /// its description and, in the multi-planar API, its plane. `Ok(None)` when none is
    /// ready.
    pub fn dequeue(
        &self,
        fd: BorrowedFd<'_>,
    ) -> io::Result<Option<(sys::v4l2_buffer, sys::v4l2_plane)>> {
        let mut plane: sys::v4l2_plane = zeroed();
        let mut buf = self.blank_buffer(0, &mut plane);
        // SAFETY: the descriptor is open; `buf` is a v4l2_buffer the driver fills in and,
        // in the multi-planar API, points at `plane`, which outlives the call.
        match call(|| unsafe { sys::vidioc_dqbuf(fd.as_raw_fd(), &mut buf) }) {
            Ok(()) => {
                if self.mplane {
                    // The pointer named the local `plane`, which is returned by value.
                    buf.m.planes = std::ptr::null_mut();
                }
                Ok(Some((buf, plane)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts streaming on this queue (`VIDIOC_STREAMON`).
    pub fn stream_on(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let kind = self.kind as i32;
        // SAFETY: the descriptor is open; STREAMON reads one int, the queue type.
        call(|| unsafe { sys::vidioc_streamon(fd.as_raw_fd(), &kind) })
    }

    /// Stops streaming on this queue (`VIDIOC_STREAMOFF`); the driver gives every buffer
    /// back.
    pub fn stream_off(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let kind = self.kind as i32;
        // SAFETY: the descriptor is open; STREAMOFF reads one int, the queue type.
        call(|| unsafe { sys::vidioc_streamoff(fd.as_raw_fd(), &kind) })
    }

    /// Unmaps every buffer and gives them back to the driver (`VIDIOC_REQBUFS` with a
    /// count of 0). For the owner's `Drop`, after [`stream_off`](Self::stream_off).
    pub fn free(&mut self, fd: BorrowedFd<'_>) {
        self.maps.clear();
        self.count = 0;
        let mut req: sys::v4l2_requestbuffers = zeroed();
        req.type_ = self.kind;
        req.memory = self.memory;
        // SAFETY: the descriptor is open; count 0 frees the driver's buffers.
        let _ = call(|| unsafe { sys::vidioc_reqbufs(fd.as_raw_fd(), &mut req) });
    }

    /// The length of mapped buffer `index`; `None` when there is no such mapped buffer.
    pub fn mapped_len(&self, index: u32) -> Option<usize> {
        self.maps.get(index as usize).map(|map| map.len)
    }

    /// Bytes `start..end` of mapped buffer `index` (cut to the buffer); `None` when there
    /// is no such mapped buffer.
    ///
    /// # Safety
    ///
    /// The buffer must not be queued to the driver while the returned slice lives (it was
    /// dequeued, or never queued), so that the driver does not write it meanwhile.
    pub unsafe fn bytes(&self, index: u32, start: usize, end: usize) -> Option<&[u8]> {
        let map = self.maps.get(index as usize)?;
        let end = end.min(map.len);
        let start = start.min(end);
        // SAFETY: the mapping is `map.len` bytes, `start..end` lies within it, and it
        // stays mapped while `self` is borrowed; the caller vouches that the driver
        // leaves the buffer alone meanwhile.
        Some(unsafe {
            std::slice::from_raw_parts((map.ptr.as_ptr() as *const u8).add(start), end - start)
        })
    }

    /// The whole of mapped buffer `index`, to write a picture into; `None` when there is
    /// no such mapped buffer.
    ///
    /// # Safety
    ///
    /// As for [`bytes`](Self::bytes): the buffer must not be queued to the driver while
    /// the returned slice lives.
    pub unsafe fn bytes_mut(&mut self, index: u32) -> Option<&mut [u8]> {
        let map = self.maps.get_mut(index as usize)?;
        // SAFETY: the mapping is `map.len` bytes and stays mapped while `self` is
        // borrowed, mutably, so no other slice of it is lent; the caller vouches that the
        // driver leaves the buffer alone meanwhile.
        Some(unsafe { std::slice::from_raw_parts_mut(map.ptr.as_ptr() as *mut u8, map.len) })
    }
}
