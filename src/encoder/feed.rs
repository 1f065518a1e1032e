//! Feeding pictures to a memory-to-memory device: importing the camera's own buffers as
//! DMABUF where the driver takes them, copying into the device's mapped buffers otherwise.
//!
//! [`Feed`] owns that decision for one device set-up. Asked to import, it opens the
//! device's input queue for DMABUF; when the driver refuses DMABUF there, refuses a
//! buffer, or a picture cannot be imported as it lies, it sets the device up again with
//! mapped buffers, keeps the reason ([`Feed::copy_reason`]) and copies from then on.
//! Nothing else changes for the caller: every picture still comes out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::m2m::{DmabufPlane, InputMemory, M2mDevice, M2mError, M2mSetup, Processed};

/// A memory-to-memory device fed by import or by copy.
pub struct Feed {
    path: PathBuf,
    setup: M2mSetup,
    device: M2mDevice,
    /// Why pictures are copied although importing was asked for.
    copying: Option<String>,
}

impl Feed {
    /// Opens `path` as `setup` says. When it asks for [`InputMemory::Dmabuf`] and the
    /// driver does not import on its input queue, the device is opened again with mapped
    /// buffers (see [`copy_reason`](Self::copy_reason)).
    pub fn open(path: &Path, setup: &M2mSetup) -> Result<Feed, M2mError> {
        let (device, copying) = match M2mDevice::open(path, setup) {
            Err(M2mError::DmabufRefused { why, .. }) => {
                let mapped = M2mSetup {
                    input_memory: InputMemory::Mmap,
                    ..setup.clone()
                };
                (M2mDevice::open(path, &mapped)?, Some(why))
            }
            other => (other?, None),
        };
        Ok(Feed {
            path: path.to_path_buf(),
            setup: setup.clone(),
            device,
            copying,
        })
    }

    /// The device as it is set up now.
    pub fn device(&self) -> &M2mDevice {
        &self.device
    }

    /// Whether pictures are imported (rather than copied) now.
    pub fn imports(&self) -> bool {
        self.device.input_memory() == InputMemory::Dmabuf
    }

    /// Why pictures are copied although importing was asked for; `None` while importing,
    /// or when copying was asked for.
    pub fn copy_reason(&self) -> Option<&str> {
        self.copying.as_deref()
    }

    /// Runs one picture through the device. While importing, `import` is the picture's
    /// buffer, or why it cannot be imported; a refusal (by the driver or by `import`)
    /// switches to copying for good. While copying, `fill` writes the picture into the
    /// device's buffer and returns the bytes it wrote.
    pub fn process(
        &mut self,
        import: Result<DmabufPlane<'_>, String>,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, String>,
        timeout: Duration,
    ) -> Result<Processed<'_>, M2mError> {
        if self.imports() {
            let refused = match import {
                Ok(plane) => match self.device.process_dmabuf(plane, timeout) {
                    Err(M2mError::DmabufRefused { why, .. }) => why,
                    // The borrow checker cannot see that returning here ends the use
                    // of `self.device`, so the result is fetched again below.
                    Ok(_) => return Ok(self.device.result().expect("a result just came")),
                    Err(e) => return Err(e),
                },
                Err(why) => why,
            };
            self.copy_from_now(refused)?;
        }
        self.device.process_with(fill, timeout)
    }

    /// Sets the device up again with mapped buffers to copy into.
    fn copy_from_now(&mut self, why: String) -> Result<(), M2mError> {
        let mapped = M2mSetup {
            input_memory: InputMemory::Mmap,
            ..self.setup.clone()
        };
        // Each open is a context of its own on a memory-to-memory device, so the new
        // one is set up before the old one goes: a failure leaves the old one in place.
        self.device = M2mDevice::open(&self.path, &mapped)?;
        self.copying = Some(why);
        Ok(())
    }
}
