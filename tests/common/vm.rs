//! The VM rig (`tests/vm/rig.sh`) from a test: boot it with the release binary and a
//! guest script in a share of its own, the guest's port 8000 forwarded to the host,
//! and wait for what the guest and the server say.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{decode, try_get};

pub struct Vm {
    pub child: Child,
    pub share: PathBuf,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = std::fs::write(self.share.join("done"), b"");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `path` exists in the share.
pub fn wait_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls /status until `pred` holds.
pub fn wait_status(
    addr: std::net::SocketAddr,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    let mut last = serde_json::Value::Null;
    while Instant::now() < deadline {
        if let Some((200, body)) = try_get(addr, "/status") {
            last = serde_json::from_slice(&body).unwrap();
            if pred(&last) {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out waiting for {what}; last status {last}");
}

/// Mean brightness of a decoded picture (0-255).
pub fn brightness(jpeg: &[u8]) -> u64 {
    let (_, _, px) = decode(jpeg);
    px.iter().map(|&v| v as u64).sum::<u64>() / px.len() as u64
}

/// Boots the rig's VM with `modules` loaded, the binary under test and `script` in a
/// share of its own (`name`), and the guest's port 8000 forwarded to the host; returns
/// the VM, its share and the forwarded address. `None` (and a line saying so) unless
/// the VM tests are asked for.
pub fn boot(
    name: &str,
    modules: &str,
    script: &str,
) -> Option<(Vm, PathBuf, std::net::SocketAddr)> {
    if std::env::var_os("PICAM_VM_TESTS").is_none() {
        eprintln!("skipped: set PICAM_VM_TESTS=1 to boot the VM rig");
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let share = std::env::temp_dir().join(format!("picam-vm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(&share).unwrap();
    let binary = std::env::var("PICAM_VM_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_picam-stream").to_string());
    let arch = std::env::var("PICAM_VM_ARCH").unwrap_or_else(|_| "x86_64".into());
    eprintln!("{arch} VM, binary {binary}");
    std::fs::copy(&binary, share.join("picam-stream")).unwrap();
    std::fs::write(share.join("guest.sh"), script).unwrap();
    let port = free_port();
    let child = Command::new(root.join("tests/vm/rig.sh"))
        .args(["run", "--arch", &arch, "--modules", modules])
        .args(["--timeout", "600"])
        .arg("--share")
        .arg(&share)
        .args([
            "--forward",
            &format!("{port}:8000"),
            "--",
            "sh /host/guest.sh",
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("start the VM rig");
    let vm = Vm {
        child,
        share: share.clone(),
    };
    Some((vm, share, format!("127.0.0.1:{port}").parse().unwrap()))
}
