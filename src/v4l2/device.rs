//! V4L2 device nodes: opening one, what it can do, and for a capture device setting a
//! format and rate and streaming through memory-mapped buffers ([`BufferQueue`]).
//!
//! Every ioctl goes through the `call` helper of [`sys`](super::sys).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::buffers::BufferQueue;
use super::sys::{self, call, zeroed};

/// Opens a device node for reading and writing, non-blocking (results are waited for
/// with `poll`) and closed on exec.
pub(crate) fn open_node(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Text from a fixed-size, NUL-padded kernel field.
pub(crate) fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `VIDIOC_QUERYCAP` on an open node: the answer, and the capabilities of this node
/// (not of the whole physical device) where the driver says them apart.
pub(crate) fn query_capability(fd: RawFd) -> io::Result<(sys::v4l2_capability, u32)> {
    let mut cap: sys::v4l2_capability = zeroed();
    // SAFETY: `fd` is an open descriptor; `cap` is a v4l2_capability the kernel fills.
    call(|| unsafe { sys::vidioc_querycap(fd, &mut cap) })?;
    let caps = if cap.capabilities & sys::V4L2_CAP_DEVICE_CAPS != 0 {
        cap.device_caps
    } else {
        cap.capabilities
    };
    Ok((cap, caps))
}

/// The pixel formats a queue of buffer type `kind` offers (`VIDIOC_ENUM_FMT`).
pub(crate) fn enumerate_formats(fd: RawFd, kind: u32) -> Vec<sys::v4l2_fmtdesc> {
    let mut out = Vec::new();
    for index in 0..64 {
        let mut desc: sys::v4l2_fmtdesc = zeroed();
        desc.index = index;
        desc.type_ = kind;
        // SAFETY: `fd` is an open descriptor; `desc` is a v4l2_fmtdesc with index and
        // type set.
        if call(|| unsafe { sys::vidioc_enum_fmt(fd, &mut desc) }).is_err() {
            break;
        }
        out.push(desc);
    }
    out
}

/// What `VIDIOC_QUERYCAP` says about a device node.
#[derive(Debug, Clone)]
pub struct Capability {
    pub driver: String,
    pub card: String,
    pub bus_info: String,
    /// Capabilities of this node (not of the whole physical device).
    pub caps: u32,
}

impl Capability {
    /// A node that captures single-planar video by streaming, and is not a codec.
    pub fn is_capture(&self) -> bool {
        let m2m = sys::V4L2_CAP_VIDEO_M2M | sys::V4L2_CAP_VIDEO_M2M_MPLANE;
        self.caps & sys::V4L2_CAP_VIDEO_CAPTURE != 0
            && self.caps & sys::V4L2_CAP_STREAMING != 0
            && self.caps & m2m == 0
    }
}

/// A pixel format the device offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDesc {
    pub fourcc: u32,
    pub description: String,
}

/// Frame sizes for one format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    Discrete(u32, u32),
    Range {
        min: (u32, u32),
        max: (u32, u32),
        step: (u32, u32),
    },
}

/// The format the driver actually set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixFormat {
    pub fourcc: u32,
    pub width: u32,
    pub height: u32,
    pub bytes_per_line: u32,
    pub size_image: u32,
}

/// An open V4L2 device node.
pub struct Device {
    file: File,
    path: PathBuf,
    capability: Capability,
}

impl Device {
    /// Opens `path` (non-blocking: frames are waited for with `poll`).
    pub fn open(path: &Path) -> io::Result<Device> {
        let file = open_node(path)?;
        let (cap, caps) = query_capability(file.as_raw_fd())?;
        Ok(Device {
            file,
            path: path.to_path_buf(),
            capability: Capability {
                driver: text(&cap.driver),
                card: text(&cap.card),
                bus_info: text(&cap.bus_info),
                caps,
            },
        })
    }

    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    pub(crate) fn fd(&self) -> libc::c_int {
        self.file.as_raw_fd()
    }

    /// The pixel formats of the capture queue.
    pub fn formats(&self) -> Vec<FormatDesc> {
        enumerate_formats(self.fd(), sys::V4L2_BUF_TYPE_VIDEO_CAPTURE)
            .iter()
            .map(|desc| FormatDesc {
                fourcc: desc.pixelformat,
                description: text(&desc.description),
            })
            .collect()
    }

    /// The frame sizes offered for `fourcc`.
    pub fn sizes(&self, fourcc: u32) -> Vec<Sizes> {
        let mut out = Vec::new();
        for index in 0..256 {
            let mut e: sys::v4l2_frmsizeenum = zeroed();
            e.index = index;
            e.pixel_format = fourcc;
            // SAFETY: the descriptor is open; `e` is a v4l2_frmsizeenum with index and format set.
            if call(|| unsafe { sys::vidioc_enum_framesizes(self.fd(), &mut e) }).is_err() {
                break;
            }
            let s = e.size;
            if e.type_ == sys::V4L2_FRMSIZE_TYPE_DISCRETE {
                // The discrete form holds width and height in the first two fields.
                out.push(Sizes::Discrete(s.min_width, s.max_width));
            } else {
                out.push(Sizes::Range {
                    min: (s.min_width, s.min_height),
                    max: (s.max_width, s.max_height),
                    step: (s.step_width.max(1), s.step_height.max(1)),
                });
                break;
            }
        }
        out
    }

    /// The frame rates offered for `fourcc` at `width`x`height`, as frames per second.
    pub fn frame_rates(&self, fourcc: u32, width: u32, height: u32) -> Vec<f64> {
        let mut out = Vec::new();
        for index in 0..64 {
            let mut e: sys::v4l2_frmivalenum = zeroed();
            e.index = index;
            e.pixel_format = fourcc;
            e.width = width;
            e.height = height;
            // SAFETY: the descriptor is open; `e` is a v4l2_frmivalenum with its keys set.
            if call(|| unsafe { sys::vidioc_enum_frameintervals(self.fd(), &mut e) }).is_err() {
                break;
            }
            let rate = |f: sys::v4l2_fract| {
                (f.numerator > 0).then(|| f.denominator as f64 / f.numerator as f64)
            };
            if e.type_ == sys::V4L2_FRMIVAL_TYPE_DISCRETE {
                out.extend(rate(e.interval[0]));
            } else {
                // Stepwise or continuous: report the fastest and slowest.
                out.extend(rate(e.interval[0]));
                out.extend(rate(e.interval[1]));
                break;
            }
        }
        out
    }

    /// Asks for a format and size; returns what the driver chose.
    pub fn set_format(&self, fourcc: u32, width: u32, height: u32) -> io::Result<PixFormat> {
        let mut f: sys::v4l2_format = zeroed();
        f.type_ = sys::V4L2_BUF_TYPE_VIDEO_CAPTURE;
        // SAFETY: `pix` is the member the capture type uses; every member is plain data.
        let pix = unsafe { &mut f.fmt.pix };
        pix.width = width;
        pix.height = height;
        pix.pixelformat = fourcc;
        pix.field = sys::V4L2_FIELD_NONE;
        // SAFETY: the descriptor is open; `f` is a v4l2_format for the capture queue.
        call(|| unsafe { sys::vidioc_s_fmt(self.fd(), &mut f) })?;
        // SAFETY: as above, the driver filled the `pix` member.
        let pix = unsafe { f.fmt.pix };
        Ok(PixFormat {
            fourcc: pix.pixelformat,
            width: pix.width,
            height: pix.height,
            bytes_per_line: pix.bytesperline,
            size_image: pix.sizeimage,
        })
    }

    /// Asks for `fps` frames per second; returns the rate the driver chose, if it says.
    pub fn set_frame_rate(&self, fps: u32) -> io::Result<Option<f64>> {
        let mut p: sys::v4l2_streamparm = zeroed();
        p.type_ = sys::V4L2_BUF_TYPE_VIDEO_CAPTURE;
        p.parm.capture.timeperframe = sys::v4l2_fract {
            numerator: 1,
            denominator: fps.max(1),
        };
        // SAFETY: the descriptor is open; `p` is a v4l2_streamparm for the capture queue.
        call(|| unsafe { sys::vidioc_s_parm(self.fd(), &mut p) })?;
        // SAFETY: as above, the driver filled the `capture` member.
        let t = unsafe { p.parm.capture.timeperframe };
        Ok((t.numerator > 0 && t.denominator > 0)
            .then(|| t.denominator as f64 / t.numerator as f64))
    }

    /// Allocates and maps `count` buffers and starts streaming.
    pub fn stream(&self, count: u32) -> io::Result<Stream<'_>> {
        let mut queue = BufferQueue::new(
            sys::V4L2_BUF_TYPE_VIDEO_CAPTURE,
            sys::V4L2_MEMORY_MMAP,
            false,
        );
        if queue.request(self.file.as_fd(), count)? == 0 {
            return Err(io::Error::other("the driver gave no capture buffers"));
        }
        let mut stream = Stream {
            device: self,
            queue,
            streaming: false,
        };
        stream.queue.map(self.file.as_fd()).map_err(|e| e.err)?;
        for index in 0..stream.queue.count() {
            stream.queue.queue(self.file.as_fd(), index)?;
        }
        stream.queue.stream_on(self.file.as_fd())?;
        stream.streaming = true;
        Ok(stream)
    }

    /// A one-line description for logs: path, card name and driver.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, driver {})",
            self.path.display(),
            self.capability.card,
            self.capability.driver
        )
    }
}

/// A streaming capture queue; stops streaming and unmaps its buffers when dropped.
pub struct Stream<'d> {
    device: &'d Device,
    queue: BufferQueue,
    streaming: bool,
}

/// One captured frame, borrowed from its buffer until the next call.
pub struct Captured<'s> {
    pub data: &'s [u8],
    pub sequence: u32,
    /// The driver marked the frame as damaged.
    pub damaged: bool,
}

impl Stream<'_> {
    /// Waits up to `timeout` for a frame, hands it to `use_frame`, then gives the buffer
    /// back to the driver. `Ok(false)` means no frame came in time.
    pub fn next(
        &mut self,
        timeout: Duration,
        use_frame: impl FnOnce(Captured<'_>),
    ) -> io::Result<bool> {
        let fd = self.device.file.as_fd();
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(false),
            Err(e) => return Err(io::Error::from(e)),
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL)
            && !revents.contains(PollFlags::POLLIN)
        {
            return Err(io::Error::other(
                "the device reported an error (unplugged?)",
            ));
        }
        let Some((buf, _)) = self.queue.dequeue(fd)? else {
            return Ok(false);
        };
        // SAFETY: the buffer was just dequeued: the driver does not write it until it is
        // queued again below, after `use_frame` has returned and the slice is gone.
        let data = unsafe { self.queue.bytes(buf.index, 0, buf.bytesused as usize) }
            .ok_or_else(|| io::Error::other("the driver returned an unknown buffer"))?;
        use_frame(Captured {
            data,
            sequence: buf.sequence,
            damaged: buf.flags & sys::V4L2_BUF_FLAG_ERROR != 0,
        });
        self.queue.queue(fd, buf.index)?;
        Ok(true)
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        let fd = self.device.file.as_fd();
        if self.streaming {
            let _ = self.queue.stream_off(fd);
        }
        self.queue.free(fd);
    }
}

/// Every V4L2 device node that exists, in name order (`/dev/video0`, `/dev/video1`, ...).
pub fn nodes() -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let n = name.strip_prefix("video")?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}
