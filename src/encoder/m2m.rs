//! A V4L2 memory-to-memory device: a hardware codec or converter that takes pictures on
//! its OUTPUT queue and hands results back on its CAPTURE queue.
//!
//! This module owns the plumbing and nothing about JPEG: finding a node by capability and
//! by the formats its two queues offer, negotiating both formats (the driver may adjust
//! sizes, and says so), setting controls, mapping buffers on both queues once, streaming,
//! and tearing it all down. It speaks both the single-planar and the multi-planar API
//! (the Pi's `bcm2835-codec` is multi-planar), for formats held in one plane.
//!
//! One picture at a time: [`M2mDevice::process_with`] writes the picture straight into a
//! free OUTPUT buffer, queues it, waits (with `poll` and a time limit) for the CAPTURE
//! buffer, and lends its bytes to the caller until the next call.
//!
//! The OUTPUT queue can instead import the caller's buffers ([`InputMemory::Dmabuf`]):
//! [`M2mDevice::process_dmabuf`] queues a DMABUF file descriptor (a camera's buffer, say)
//! and the device reads the picture where it lies, without a copy. A driver that does
//! not take DMABUF on that queue, or refuses a particular buffer, answers with
//! [`M2mError::DmabufRefused`], so the caller can set up again with mapped buffers and
//! copy. The CAPTURE queue is always mapped.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::v4l2::buffers::BufferQueue;
use crate::v4l2::device::{enumerate_formats, nodes, open_node, query_capability, text};
use crate::v4l2::sys::{self, call, fourcc_name, zeroed};

/// Why the device could not be set up or did not deliver.
#[derive(Debug)]
pub enum M2mError {
    /// The node cannot be opened, or is not a memory-to-memory device.
    Open { path: PathBuf, why: String },
    /// The driver does not take a format on a queue, or replaced it with another.
    FormatRefused {
        path: PathBuf,
        queue: &'static str,
        asked: String,
        why: String,
    },
    /// The device went away (driver unbound, module unloaded, hardware gone).
    Vanished { path: PathBuf, why: String },
    /// No result came within the time limit.
    Timeout { path: PathBuf, waited: Duration },
    /// The driver marked the result as damaged.
    Damaged { path: PathBuf },
    /// The picture handed in does not fit the negotiated format.
    Input { path: PathBuf, why: String },
    /// The driver does not import DMABUF buffers on its input queue (at set-up), or
    /// refused the one handed in (not a DMABUF, too small, not attachable). Copying into
    /// mapped buffers ([`InputMemory::Mmap`]) is the way on.
    DmabufRefused { path: PathBuf, why: String },
    /// Any other failed call.
    Io {
        path: PathBuf,
        what: &'static str,
        err: io::Error,
    },
}

impl fmt::Display for M2mError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            M2mError::Open { path, why } => write!(f, "{}: {why}", path.display()),
            M2mError::FormatRefused {
                path,
                queue,
                asked,
                why,
            } => write!(
                f,
                "{}: {queue} format {asked} refused: {why}",
                path.display()
            ),
            M2mError::Vanished { path, why } => {
                write!(f, "{}: the device went away ({why})", path.display())
            }
            M2mError::Timeout { path, waited } => write!(
                f,
                "{}: no result within {} ms",
                path.display(),
                waited.as_millis()
            ),
            M2mError::Damaged { path } => {
                write!(
                    f,
                    "{}: the driver marked the result damaged",
                    path.display()
                )
            }
            M2mError::Input { path, why } => write!(f, "{}: {why}", path.display()),
            M2mError::DmabufRefused { path, why } => {
                write!(f, "{}: DMABUF input refused: {why}", path.display())
            }
            M2mError::Io { path, what, err } => {
                write!(f, "{}: {what} failed: {err}", path.display())
            }
        }
    }
}

impl std::error::Error for M2mError {}

/// Error numbers that mean the device is gone rather than merely unhappy.
fn is_gone(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EPIPE)
    )
}

/// What a memory-to-memory node is and offers, found without configuring it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct M2mNode {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    /// Speaks the multi-planar API.
    pub mplane: bool,
    /// Formats the OUTPUT queue takes (pictures going in).
    pub output_formats: Vec<u32>,
    /// Formats the CAPTURE queue produces (results coming out).
    pub capture_formats: Vec<u32>,
}

impl M2mNode {
    /// Opens `path` and reads its capabilities and formats; `None` when it is not a
    /// memory-to-memory node.
    pub fn probe(path: &Path) -> Option<M2mNode> {
        let file = open_node(path).ok()?;
        let (driver, card, caps) = query(&file).ok()?;
        let mplane = if caps & sys::V4L2_CAP_VIDEO_M2M_MPLANE != 0 {
            true
        } else if caps & sys::V4L2_CAP_VIDEO_M2M != 0 {
            false
        } else {
            return None;
        };
        let (out_type, cap_type) = queue_types(mplane);
        Some(M2mNode {
            path: path.to_path_buf(),
            driver,
            card,
            mplane,
            output_formats: enum_formats(&file, out_type),
            capture_formats: enum_formats(&file, cap_type),
        })
    }

    /// True when the node takes `input` and produces `output`.
    pub fn converts(&self, input: u32, output: u32) -> bool {
        self.output_formats.contains(&input) && self.capture_formats.contains(&output)
    }

    /// A one-line description: path, card and driver.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, driver {})",
            self.path.display(),
            self.card,
            self.driver
        )
    }
}

/// Every memory-to-memory node on the system, in node order.
pub fn all_nodes() -> Vec<M2mNode> {
    nodes().iter().filter_map(|p| M2mNode::probe(p)).collect()
}

/// The first node producing one of `outputs` (earlier formats preferred over later ones,
/// whichever node offers them), optionally also taking `input`.
pub fn find(input: Option<u32>, outputs: &[u32]) -> Option<M2mNode> {
    let all = all_nodes();
    outputs.iter().find_map(|&out| {
        all.iter()
            .find(|n| {
                n.capture_formats.contains(&out)
                    && input.is_none_or(|i| n.output_formats.contains(&i))
            })
            .cloned()
    })
}

/// Driver name, card name and the node's own capabilities.
fn query(file: &File) -> io::Result<(String, String, u32)> {
    let (cap, caps) = query_capability(file.as_raw_fd())?;
    Ok((text(&cap.driver), text(&cap.card), caps))
}

fn enum_formats(file: &File, kind: u32) -> Vec<u32> {
    enumerate_formats(file.as_raw_fd(), kind)
        .iter()
        .map(|desc| desc.pixelformat)
        .collect()
}

/// The buffer types of the OUTPUT and CAPTURE queues.
fn queue_types(mplane: bool) -> (u32, u32) {
    if mplane {
        (
            sys::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
            sys::V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        )
    } else {
        (
            sys::V4L2_BUF_TYPE_VIDEO_OUTPUT,
            sys::V4L2_BUF_TYPE_VIDEO_CAPTURE,
        )
    }
}

/// Where the OUTPUT queue's pictures live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputMemory {
    /// Buffers the driver allocates and we map; pictures are copied into them.
    #[default]
    Mmap,
    /// The caller's DMABUF buffers, imported as they are ([`M2mDevice::process_dmabuf`]).
    Dmabuf,
}

/// One picture in a DMABUF buffer, as handed to [`M2mDevice::process_dmabuf`].
#[derive(Debug, Clone, Copy)]
pub struct DmabufPlane<'a> {
    pub fd: BorrowedFd<'a>,
    /// Where the picture starts in the buffer (the multi-planar API only; single-planar
    /// devices read from the start, so it must be 0 there).
    pub offset: u32,
    /// The buffer's length from its start (at least `offset + bytesused`; the driver
    /// also wants at least its format's image size).
    pub length: u32,
    /// The picture's length in bytes, from `offset`.
    pub bytesused: u32,
}

/// What to ask of the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct M2mSetup {
    /// Format of the pictures going in (OUTPUT queue).
    pub input: u32,
    /// Format of the results (CAPTURE queue).
    pub output: u32,
    pub width: u32,
    pub height: u32,
    /// OUTPUT buffers; with [`InputMemory::Dmabuf`] these are slots for imported
    /// buffers, which cost nothing, and a buffer the device saw before is imported again
    /// more cheaply when it gets its slot back, so as many as the camera has is best.
    pub input_buffers: u32,
    pub output_buffers: u32,
    /// Mapped buffers or imported DMABUF on the OUTPUT queue.
    pub input_memory: InputMemory,
    /// Controls set before streaming, as (id, value); ones the driver lacks are skipped.
    pub controls: Vec<(u32, i32)>,
}

/// The format a queue ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFormat {
    pub fourcc: u32,
    pub width: u32,
    pub height: u32,
    pub bytes_per_line: u32,
    pub size_image: u32,
}

/// One queue's buffers, and the format the driver set on it.
struct Queue {
    buffers: BufferQueue,
    format: QueueFormat,
}

/// A configured, streaming memory-to-memory device. Dropping it stops both queues,
/// unmaps and frees every buffer.
pub struct M2mDevice {
    file: File,
    path: PathBuf,
    mplane: bool,
    output: Queue,
    capture: Queue,
    /// OUTPUT buffers we own (not queued to the driver).
    free_inputs: Vec<u32>,
    /// With imported input: the descriptor last queued in each OUTPUT slot, so that a
    /// buffer goes back to the slot where the driver still has it attached.
    slot_fds: Vec<RawFd>,
    /// With imported input: slots given up after the driver refused a buffer in them.
    retired: u32,
    /// The CAPTURE buffer lent to the caller, queued again on the next call.
    lent: Option<Lent>,
    streaming: bool,
    /// Controls the driver took, of those asked for.
    controls_set: Vec<(u32, i32)>,
}

/// Where the lent result lies in its CAPTURE buffer.
#[derive(Clone, Copy)]
struct Lent {
    index: u32,
    start: usize,
    end: usize,
    sequence: u32,
}

/// A finished result, borrowed from its CAPTURE buffer until the next call.
pub struct Processed<'d> {
    pub data: &'d [u8],
    pub sequence: u32,
}

impl M2mDevice {
    /// Opens `path`, negotiates both formats, sets the controls, maps the buffers and
    /// starts streaming.
    pub fn open(path: &Path, setup: &M2mSetup) -> Result<M2mDevice, M2mError> {
        let path_buf = path.to_path_buf();
        let file = open_node(path).map_err(|e| M2mError::Open {
            path: path_buf.clone(),
            why: if is_gone(&e) || e.kind() == io::ErrorKind::NotFound {
                format!("not there: {e}")
            } else {
                e.to_string()
            },
        })?;
        let (_, _, caps) = query(&file).map_err(|e| M2mError::Open {
            path: path_buf.clone(),
            why: format!("not a V4L2 device: {e}"),
        })?;
        let mplane = if caps & sys::V4L2_CAP_VIDEO_M2M_MPLANE != 0 {
            true
        } else if caps & sys::V4L2_CAP_VIDEO_M2M != 0 {
            false
        } else {
            return Err(M2mError::Open {
                path: path_buf,
                why: "not a memory-to-memory device".into(),
            });
        };
        let (out_type, cap_type) = queue_types(mplane);
        let mut dev = M2mDevice {
            file,
            path: path_buf,
            mplane,
            output: Queue {
                buffers: BufferQueue::new(
                    out_type,
                    match setup.input_memory {
                        InputMemory::Mmap => sys::V4L2_MEMORY_MMAP,
                        InputMemory::Dmabuf => sys::V4L2_MEMORY_DMABUF,
                    },
                    mplane,
                ),
                format: blank_format(),
            },
            capture: Queue {
                buffers: BufferQueue::new(cap_type, sys::V4L2_MEMORY_MMAP, mplane),
                format: blank_format(),
            },
            free_inputs: Vec::new(),
            slot_fds: Vec::new(),
            retired: 0,
            lent: None,
            streaming: false,
            controls_set: Vec::new(),
        };
        // The OUTPUT format first: for encoders it decides the CAPTURE size.
        dev.output.format =
            dev.set_format(out_type, "input", setup.input, setup.width, setup.height)?;
        let (w, h) = (dev.output.format.width, dev.output.format.height);
        dev.capture.format = dev.set_format(cap_type, "output", setup.output, w, h)?;
        for &(id, value) in &setup.controls {
            if dev.set_control(id, value)? {
                dev.controls_set.push((id, value));
            }
        }
        dev.allocate(true, setup.input_buffers.max(1))?;
        dev.allocate(false, setup.output_buffers.max(1))?;
        dev.free_inputs = (0..dev.output.buffers.count()).rev().collect();
        dev.slot_fds = vec![-1; dev.output.buffers.count() as usize];
        for index in 0..dev.capture.buffers.count() {
            dev.queue_capture(index)?;
        }
        for input in [true, false] {
            let queue = if input { &dev.output } else { &dev.capture };
            queue
                .buffers
                .stream_on(dev.file.as_fd())
                .map_err(|e| dev.io_error("VIDIOC_STREAMON", e))?;
            dev.streaming = true;
        }
        Ok(dev)
    }

    fn fd(&self) -> libc::c_int {
        self.file.as_raw_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the device speaks the multi-planar API.
    pub fn is_mplane(&self) -> bool {
        self.mplane
    }

    /// The format pictures must be in (size and row length as the driver set them).
    pub fn input_format(&self) -> QueueFormat {
        self.output.format
    }

    /// The format of the results.
    pub fn output_format(&self) -> QueueFormat {
        self.capture.format
    }

    /// The controls the driver took, of those asked for.
    pub fn controls_set(&self) -> &[(u32, i32)] {
        &self.controls_set
    }

    /// Buffers allocated on the OUTPUT and CAPTURE queues (for imported input, slots).
    pub fn buffer_counts(&self) -> (usize, usize) {
        (
            self.output.buffers.count() as usize,
            self.capture.buffers.count() as usize,
        )
    }

    /// Whether the OUTPUT queue imports DMABUF buffers or copies into mapped ones.
    pub fn input_memory(&self) -> InputMemory {
        if self.output.buffers.memory() == sys::V4L2_MEMORY_DMABUF {
            InputMemory::Dmabuf
        } else {
            InputMemory::Mmap
        }
    }

    fn io_error(&self, what: &'static str, err: io::Error) -> M2mError {
        if is_gone(&err) {
            M2mError::Vanished {
                path: self.path.clone(),
                why: format!("{what}: {err}"),
            }
        } else {
            M2mError::Io {
                path: self.path.clone(),
                what,
                err,
            }
        }
    }

    fn set_format(
        &self,
        kind: u32,
        queue: &'static str,
        fourcc: u32,
        width: u32,
        height: u32,
    ) -> Result<QueueFormat, M2mError> {
        let asked = format!("{} {width}x{height}", fourcc_name(fourcc));
        let refused = |why: String| M2mError::FormatRefused {
            path: self.path.clone(),
            queue,
            asked: asked.clone(),
            why,
        };
        let mut f: sys::v4l2_format = zeroed();
        f.type_ = kind;
        if self.mplane {
            // SAFETY: `pix_mp` is the member the multi-planar types use; all plain data.
            let pix = unsafe { &mut f.fmt.pix_mp };
            pix.width = width;
            pix.height = height;
            pix.pixelformat = fourcc;
            pix.field = sys::V4L2_FIELD_NONE;
            pix.num_planes = 1;
        } else {
            // SAFETY: `pix` is the member the single-planar types use; all plain data.
            let pix = unsafe { &mut f.fmt.pix };
            pix.width = width;
            pix.height = height;
            pix.pixelformat = fourcc;
            pix.field = sys::V4L2_FIELD_NONE;
        }
        // SAFETY: the descriptor is open; `f` is a v4l2_format for this queue.
        call(|| unsafe { sys::vidioc_s_fmt(self.fd(), &mut f) }).map_err(|e| {
            if is_gone(&e) {
                self.io_error("VIDIOC_S_FMT", e)
            } else {
                refused(e.to_string())
            }
        })?;
        let got = if self.mplane {
            // SAFETY: as above; the driver filled the `pix_mp` member.
            let pix = unsafe { f.fmt.pix_mp };
            if pix.num_planes != 1 {
                return Err(refused(format!(
                    "the driver wants {} planes; only single-plane formats are handled",
                    pix.num_planes
                )));
            }
            QueueFormat {
                fourcc: pix.pixelformat,
                width: pix.width,
                height: pix.height,
                bytes_per_line: pix.plane_fmt[0].bytesperline,
                size_image: pix.plane_fmt[0].sizeimage,
            }
        } else {
            // SAFETY: as above; the driver filled the `pix` member.
            let pix = unsafe { f.fmt.pix };
            QueueFormat {
                fourcc: pix.pixelformat,
                width: pix.width,
                height: pix.height,
                bytes_per_line: pix.bytesperline,
                size_image: pix.sizeimage,
            }
        };
        if got.fourcc != fourcc {
            return Err(refused(format!(
                "the driver chose {} instead",
                fourcc_name(got.fourcc)
            )));
        }
        if got.width == 0 || got.height == 0 {
            return Err(refused(format!(
                "the driver set an empty size {}x{}",
                got.width, got.height
            )));
        }
        if (got.width, got.height) != (width, height) {
            log::debug!(
                "{}: {queue} {} adjusted by the driver to {}x{}",
                self.path.display(),
                asked,
                got.width,
                got.height
            );
        }
        Ok(got)
    }

    /// Sets a control; `Ok(false)` when the driver has no such control.
    pub fn set_control(&self, id: u32, value: i32) -> Result<bool, M2mError> {
        let mut c = sys::v4l2_control { id, value };
        // SAFETY: the descriptor is open; `c` is a v4l2_control.
        match call(|| unsafe { sys::vidioc_s_ctrl(self.fd(), &mut c) }) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => Ok(false),
            Err(e) => Err(self.io_error("VIDIOC_S_CTRL", e)),
        }
    }

    /// Reads a control; `None` when the driver has no such control.
    pub fn control(&self, id: u32) -> Option<i32> {
        let mut c = sys::v4l2_control { id, value: 0 };
        // SAFETY: the descriptor is open; `c` is a v4l2_control.
        call(|| unsafe { sys::vidioc_g_ctrl(self.fd(), &mut c) }).ok()?;
        Some(c.value)
    }

    /// Asks for `count` buffers on the OUTPUT (`input`) or the CAPTURE queue and maps
    /// them (imported DMABUF buffers are slots only: the buffers come with each picture).
    fn allocate(&mut self, input: bool, count: u32) -> Result<(), M2mError> {
        let queue = if input {
            &mut self.output.buffers
        } else {
            &mut self.capture.buffers
        };
        let memory = queue.memory();
        let requested = queue.request(self.file.as_fd(), count);
        let given = requested.map_err(|e| {
            if memory == sys::V4L2_MEMORY_DMABUF && e.raw_os_error() == Some(libc::EINVAL) {
                M2mError::DmabufRefused {
                    path: self.path.clone(),
                    why: "the driver does not import DMABUF buffers on its input queue".into(),
                }
            } else {
                self.io_error("VIDIOC_REQBUFS", e)
            }
        })?;
        if given == 0 {
            return Err(self.io_error(
                "VIDIOC_REQBUFS",
                io::Error::other("the driver gave no buffers"),
            ));
        }
        let queue = if input {
            &mut self.output.buffers
        } else {
            &mut self.capture.buffers
        };
        let mapped = queue.map(self.file.as_fd());
        mapped.map_err(|e| self.io_error(e.call, e.err))
    }

    fn queue_capture(&self, index: u32) -> Result<(), M2mError> {
        self.capture
            .buffers
            .queue(self.file.as_fd(), index)
            .map_err(|e| self.io_error("VIDIOC_QBUF (capture)", e))
    }

    /// Dequeues one buffer of the OUTPUT (`input`) or the CAPTURE queue without waiting:
    /// `Ok(None)` when none is ready.
    fn try_dequeue(
        &self,
        input: bool,
    ) -> Result<Option<(sys::v4l2_buffer, sys::v4l2_plane)>, M2mError> {
        let queue = if input { &self.output } else { &self.capture };
        queue
            .buffers
            .dequeue(self.file.as_fd())
            .map_err(|e| self.io_error("VIDIOC_DQBUF", e))
    }

    /// Waits until the device is readable (`POLLIN`) or writable (`POLLOUT`), or the
    /// deadline passes (`Ok(false)`).
    fn wait(
        &self,
        events: PollFlags,
        deadline: Instant,
        started: Instant,
    ) -> Result<bool, M2mError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), events)];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(self.io_error("poll", io::Error::from(e))),
            }
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if revents.intersects(events) {
                return Ok(true);
            }
            if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                return Err(M2mError::Vanished {
                    path: self.path.clone(),
                    why: format!(
                        "poll reported {revents:?} after {} ms",
                        started.elapsed().as_millis()
                    ),
                });
            }
        }
    }

    /// Takes back every finished OUTPUT buffer without waiting.
    fn reclaim_inputs(&mut self) -> Result<(), M2mError> {
        while let Some((buf, _)) = self.try_dequeue(true)? {
            if !self.free_inputs.contains(&buf.index) {
                self.free_inputs.push(buf.index);
            }
        }
        Ok(())
    }

    /// Copies `picture` (laid out as [`input_format`](Self::input_format) says) into the
    /// device and returns the result.
    pub fn process(
        &mut self,
        picture: &[u8],
        timeout: Duration,
    ) -> Result<Processed<'_>, M2mError> {
        self.process_with(
            |buf| {
                let n = picture.len().min(buf.len());
                buf[..n].copy_from_slice(&picture[..n]);
                if n < picture.len() {
                    Err(format!(
                        "a {} byte picture does not fit the {} byte input buffer",
                        picture.len(),
                        buf.len()
                    ))
                } else {
                    Ok(n)
                }
            },
            timeout,
        )
    }

    /// Lets `fill` write one picture straight into a free input buffer (returning how many
    /// bytes it wrote), runs the device and returns the result, or an error within
    /// `timeout`.
    pub fn process_with(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, String>,
        timeout: Duration,
    ) -> Result<Processed<'_>, M2mError> {
        if self.output.buffers.memory() != sys::V4L2_MEMORY_MMAP {
            return Err(self.input_error("set up to import buffers, not to copy into its own"));
        }
        let started = Instant::now();
        let deadline = started + timeout;
        self.await_free_input(deadline, started, timeout)?;
        let index = self.free_inputs.pop().expect("a free input buffer");
        // SAFETY: the driver does not touch this buffer: it is dequeued (or was never
        // queued), and it is queued below only after `fill` is done with it.
        let Some(area) = (unsafe { self.output.buffers.bytes_mut(index) }) else {
            self.free_inputs.push(index);
            return Err(self.io_error("process", io::Error::other("an unknown buffer")));
        };
        let len = area.len();
        let used = match fill(area) {
            Ok(n) => n.min(len),
            Err(why) => {
                self.free_inputs.push(index);
                return Err(M2mError::Input {
                    path: self.path.clone(),
                    why,
                });
            }
        };
        let mut plane: sys::v4l2_plane = zeroed();
        plane.bytesused = used as u32;
        plane.length = len as u32;
        let mut buf = self.output.buffers.blank_buffer(index, &mut plane);
        buf.bytesused = used as u32;
        // `buf` names one of our mapped OUTPUT buffers and in the multi-planar API points
        // at `plane`, which outlives the call.
        if let Err(e) = BufferQueue::queue_buffer(self.file.as_fd(), &mut buf) {
            self.free_inputs.push(index);
            return Err(self.io_error("VIDIOC_QBUF (input)", e));
        }
        self.await_result(deadline, started, timeout)
    }

    /// Hands the device the picture in `picture`'s DMABUF buffer, without copying it, and
    /// returns the result, or an error within `timeout`. When it returns `Ok`, the device
    /// has given the buffer back: the caller may refill it. The device must have been set
    /// up with [`InputMemory::Dmabuf`]. A buffer the driver will not import is
    /// [`M2mError::DmabufRefused`]; the device stays usable.
    pub fn process_dmabuf(
        &mut self,
        picture: DmabufPlane<'_>,
        timeout: Duration,
    ) -> Result<Processed<'_>, M2mError> {
        if self.output.buffers.memory() != sys::V4L2_MEMORY_DMABUF {
            return Err(self.input_error("set up to copy into its own buffers, not to import"));
        }
        let end = picture.offset as u64 + picture.bytesused as u64;
        if !self.mplane && picture.offset != 0 {
            return Err(self.input_error("a single-planar device reads from the buffer's start"));
        }
        if end > picture.length as u64 {
            return Err(self.input_error("the picture runs past the end of its buffer"));
        }
        if self.retired == self.output.buffers.count() {
            return Err(M2mError::DmabufRefused {
                path: self.path.clone(),
                why: "every input slot held a buffer the driver refused".into(),
            });
        }
        let started = Instant::now();
        let deadline = started + timeout;
        self.await_free_input(deadline, started, timeout)?;
        let fd = picture.fd.as_raw_fd();
        // The slot this buffer had before, if free: the driver keeps it attached there.
        let at = self
            .free_inputs
            .iter()
            .position(|&i| self.slot_fds[i as usize] == fd)
            .unwrap_or(self.free_inputs.len() - 1);
        let index = self.free_inputs.swap_remove(at);
        let mut plane: sys::v4l2_plane = zeroed();
        plane.m.fd = fd;
        plane.length = picture.length;
        plane.bytesused = end as u32;
        plane.data_offset = picture.offset;
        let mut buf = self.output.buffers.blank_buffer(index, &mut plane);
        if !self.mplane {
            buf.m.fd = fd;
            buf.length = picture.length;
            buf.bytesused = picture.bytesused;
        }
        // `buf` names one of our OUTPUT slots and carries the caller's descriptor, which
        // the borrow keeps open for the call (the driver takes its own reference to the
        // buffer); in the multi-planar API it points at `plane`, which outlives the call.
        if let Err(e) = BufferQueue::queue_buffer(self.file.as_fd(), &mut buf) {
            self.slot_fds[index as usize] = -1;
            let refused = matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EBADF));
            if refused && !self.mplane {
                // A failed import leaves the slot with a length of 0, which the kernel's
                // single-planar check then holds every later picture against: the slot
                // cannot take a picture again, so it is not used again.
                self.retired += 1;
            } else {
                self.free_inputs.push(index);
            }
            return Err(match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EBADF) => M2mError::DmabufRefused {
                    path: self.path.clone(),
                    why: format!("the driver would not take the buffer ({e})"),
                },
                _ => self.io_error("VIDIOC_QBUF (input)", e),
            });
        }
        self.slot_fds[index as usize] = fd;
        self.await_result(deadline, started, timeout)?;
        // The caller reuses its buffer once this returns: wait until the device is done.
        while !self.free_inputs.contains(&index) {
            if !self.wait(PollFlags::POLLOUT, deadline, started)? {
                return Err(M2mError::Timeout {
                    path: self.path.clone(),
                    waited: timeout,
                });
            }
            self.reclaim_inputs()?;
        }
        Ok(self.result().expect("a result was just stored"))
    }

    fn input_error(&self, why: &str) -> M2mError {
        M2mError::Input {
            path: self.path.clone(),
            why: why.to_string(),
        }
    }

    /// Queues the lent CAPTURE buffer again and waits until an OUTPUT buffer is free.
    fn await_free_input(
        &mut self,
        deadline: Instant,
        started: Instant,
        timeout: Duration,
    ) -> Result<(), M2mError> {
        if let Some(lent) = self.lent.take() {
            self.queue_capture(lent.index)?;
        }
        self.reclaim_inputs()?;
        while self.free_inputs.is_empty() {
            if !self.wait(PollFlags::POLLOUT, deadline, started)? {
                return Err(M2mError::Timeout {
                    path: self.path.clone(),
                    waited: timeout,
                });
            }
            self.reclaim_inputs()?;
        }
        Ok(())
    }

    /// Waits for the next result and lends it out.
    fn await_result(
        &mut self,
        deadline: Instant,
        started: Instant,
        timeout: Duration,
    ) -> Result<Processed<'_>, M2mError> {
        loop {
            if let Some((buf, plane)) = self.try_dequeue(false)? {
                self.reclaim_inputs()?;
                if buf.flags & sys::V4L2_BUF_FLAG_ERROR != 0 {
                    self.queue_capture(buf.index)?;
                    return Err(M2mError::Damaged {
                        path: self.path.clone(),
                    });
                }
                let Some(len) = self.capture.buffers.mapped_len(buf.index) else {
                    return Err(
                        self.io_error("VIDIOC_DQBUF", io::Error::other("an unknown buffer"))
                    );
                };
                let (start, end) = if self.mplane {
                    (plane.data_offset as usize, plane.bytesused as usize)
                } else {
                    (0, buf.bytesused as usize)
                };
                let end = end.min(len);
                self.lent = Some(Lent {
                    index: buf.index,
                    start: start.min(end),
                    end,
                    sequence: buf.sequence,
                });
                return Ok(self.result().expect("a result was just stored"));
            }
            if !self.wait(PollFlags::POLLIN, deadline, started)? {
                return Err(M2mError::Timeout {
                    path: self.path.clone(),
                    waited: timeout,
                });
            }
        }
    }
}

impl M2mDevice {
    /// The newest result again, while it is still lent (until the next call).
    pub fn result(&self) -> Option<Processed<'_>> {
        let lent = self.lent?;
        // SAFETY: the buffer stays dequeued, so the driver leaves it alone, until the next
        // `process_with` or `process_dmabuf`, which needs `&mut self` and so cannot run
        // while the returned borrow lives.
        let data = unsafe { self.capture.buffers.bytes(lent.index, lent.start, lent.end) }?;
        Some(Processed {
            data,
            sequence: lent.sequence,
        })
    }
}

fn blank_format() -> QueueFormat {
    QueueFormat {
        fourcc: 0,
        width: 0,
        height: 0,
        bytes_per_line: 0,
        size_image: 0,
    }
}

impl Drop for M2mDevice {
    fn drop(&mut self) {
        let fd = self.file.as_fd();
        if self.streaming {
            let _ = self.output.buffers.stream_off(fd);
            let _ = self.capture.buffers.stream_off(fd);
        }
        self.output.buffers.free(fd);
        self.capture.buffers.free(fd);
    }
}
