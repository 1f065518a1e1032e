//! The camera settings kept between runs (`--state-dir`): one small file per camera in
//! the state directory, `controls-<camera>.json`, holding the values clients set, by
//! control name, in the order they were set. It is the [`ControlMemory`] of the
//! [`ControlBoard`](crate::controls::ControlBoard), which applies the values when the
//! camera opens and hands them back after every change.
//!
//! The file is a flat JSON object, the same form as a `POST /controls` body (read by
//! [`crate::json::read_changes`]), whose first entry, `"@camera"`, names the camera it
//! belongs to (no control is named with an `@`):
//!
//! ```text
//! {"@camera":"v4l2 uvcvideo HD Pro Webcam C920","brightness":150,"power_line_frequency":"50 Hz"}
//! ```
//!
//! It is written atomically (a temporary file in the same directory, flushed to the disk,
//! renamed over the old one, the directory flushed), so a power cut leaves the old file
//! or the new one, never a mix. It is read at most [`MAX_FILE`] bytes. A file that
//! cannot be used (not JSON, too large, another camera's) is moved aside to
//! `<file>.bad` with a warning, and the camera starts with its own values.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::controls::{ControlMemory, ControlValue};
use crate::json::{read_changes, write_changes};

/// The largest settings file read or written: far more than any camera's controls take.
pub const MAX_FILE: u64 = 64 * 1024;

/// The key of the file's first entry: the camera's identity.
pub const CAMERA_KEY: &str = "@camera";

/// Longest part of a file name made from a camera's identity.
const MAX_NAME: usize = 100;

/// The settings files in one state directory.
pub struct SavedControls {
    dir: PathBuf,
}

impl SavedControls {
    /// The settings files in `dir`, which is made if it does not exist. An error says
    /// why it cannot be used and what to do (the server then keeps nothing).
    pub fn open(dir: &Path) -> Result<SavedControls, String> {
        let fix = "camera settings will not be kept: give --state-dir (PICAM_STATE_DIR) \
                   a directory the server may write, or off";
        fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot make the state directory {}: {e}; {fix}",
                dir.display()
            )
        })?;
        let probe = dir.join(format!(".picam-stream-probe.{}", std::process::id()));
        File::create(&probe).map_err(|e| {
            format!(
                "cannot write in the state directory {}: {e}; {fix}",
                dir.display()
            )
        })?;
        let _ = fs::remove_file(&probe);
        Ok(SavedControls {
            dir: dir.to_path_buf(),
        })
    }

    /// The file of camera `identity`.
    pub fn path(&self, identity: &str) -> PathBuf {
        self.dir.join(file_name(identity))
    }

    /// The values in camera `identity`'s file: none when there is no file; an error
    /// saying what is wrong with one that cannot be used.
    fn read(&self, identity: &str) -> Result<Vec<(String, ControlValue)>, Problem> {
        let path = self.path(identity);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Problem::Unreadable(e.to_string())),
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Problem::Unreadable(e.to_string()))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(Problem::Unusable(format!(
                "it is larger than {} KiB",
                MAX_FILE / 1024
            )));
        }
        parse(&bytes, identity).map_err(Problem::Unusable)
    }

    /// Moves the file at `path` aside to `<path>.bad`; says where, or why not.
    fn set_aside(path: &Path) -> String {
        let mut bad = path.as_os_str().to_owned();
        bad.push(".bad");
        let bad = PathBuf::from(bad);
        match fs::rename(path, &bad) {
            Ok(()) => format!("moved aside to {}", bad.display()),
            Err(e) => format!("it could not be moved aside ({e}): remove it"),
        }
    }
}

/// Why a settings file is not applied.
enum Problem {
    /// It could not be read (permissions, I/O).
    Unreadable(String),
    /// It was read, and is not a settings file of this camera.
    Unusable(String),
}

impl ControlMemory for SavedControls {
    fn place(&self, identity: &str) -> String {
        self.path(identity).display().to_string()
    }

    fn recall(&self, identity: &str) -> Vec<(String, ControlValue)> {
        let path = self.path(identity);
        match self.read(identity) {
            Ok(values) => values,
            Err(Problem::Unreadable(e)) => {
                log::warn!(
                    "cannot read the saved camera settings {}: {e}; the camera starts with \
                     its own values. Let the server's user read and write it, or remove it",
                    path.display()
                );
                Vec::new()
            }
            Err(Problem::Unusable(why)) => {
                // Before the line: log macros skip their arguments at a level not logged.
                let aside = SavedControls::set_aside(&path);
                log::warn!(
                    "the saved camera settings {} are not used: {why}; {}. The camera \
                     starts with its own values, and the next change is saved anew",
                    path.display(),
                    aside
                );
                Vec::new()
            }
        }
    }

    fn keep(&self, identity: &str, values: &[(String, ControlValue)]) -> Result<(), String> {
        let text = render(identity, values);
        if text.len() as u64 > MAX_FILE {
            return Err(format!(
                "{} bytes of settings, more than {} KiB",
                text.len(),
                MAX_FILE / 1024
            ));
        }
        write_atomically(&self.path(identity), text.as_bytes()).map_err(|e| e.to_string())
    }

    fn forget(&self, identity: &str) -> Result<(), String> {
        match fs::remove_file(self.path(identity)) {
            Ok(()) => sync_dir(&self.dir).map_err(|e| e.to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `controls-<identity in lower-case words joined by '-'>.json`.
pub fn file_name(identity: &str) -> String {
    let mut name = String::new();
    for word in identity
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if name.len() + word.len() >= MAX_NAME {
            break;
        }
        if !name.is_empty() {
            name.push('-');
        }
        name.push_str(&word.to_ascii_lowercase());
    }
    if name.is_empty() {
        name.push_str("camera");
    }
    format!("controls-{name}.json")
}

/// The file's text for camera `identity` and its `values`.
pub fn render(identity: &str, values: &[(String, ControlValue)]) -> String {
    let mut all = Vec::with_capacity(values.len() + 1);
    all.push((
        CAMERA_KEY.to_string(),
        ControlValue::Text(identity.to_string()),
    ));
    all.extend(values.iter().cloned());
    let mut text = write_changes(&all);
    text.push('\n');
    text
}

/// The values of a settings file of camera `identity`; an error (one line) when it is
/// not one, or another camera's.
pub fn parse(bytes: &[u8], identity: &str) -> Result<Vec<(String, ControlValue)>, String> {
    let mut values = read_changes(bytes)?;
    match values.first() {
        Some((key, ControlValue::Text(camera))) if key == CAMERA_KEY => {
            if camera != identity {
                return Err(format!(
                    "it holds the settings of camera {camera:?}, not of {identity:?}"
                ));
            }
        }
        _ => {
            return Err(format!(
                "its first entry is not \"{CAMERA_KEY}\" naming the camera"
            ))
        }
    }
    values.remove(0);
    Ok(values)
}

/// Replaces `path` with a file holding `bytes`, so that a crash or a power cut leaves
/// either the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(path.file_name().unwrap_or_default());
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

/// Flushes `dir`'s entries (a rename or a removal) to the disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own, removed at the end.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("picam-saved-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn values() -> Vec<(String, ControlValue)> {
        vec![
            ("brightness".into(), ControlValue::Number(-20.0)),
            (
                "white_balance_automatic".into(),
                ControlValue::Boolean(false),
            ),
            ("pattern".into(), ControlValue::Text("Grey \"x\"".into())),
        ]
    }

    #[test]
    fn file_names_say_which_camera() {
        assert_eq!(file_name("test pattern"), "controls-test-pattern.json");
        assert_eq!(
            file_name("v4l2 uvcvideo HD Pro Webcam C920"),
            "controls-v4l2-uvcvideo-hd-pro-webcam-c920.json"
        );
        assert_eq!(file_name("../../etc/passwd"), "controls-etc-passwd.json");
        assert_eq!(file_name("/// é"), "controls-camera.json");
        assert!(file_name(&"word ".repeat(1000)).len() < MAX_NAME + 20);
    }

    #[test]
    fn kept_values_come_back_for_their_camera_only() {
        let dir = Dir::new("back");
        let saved = SavedControls::open(&dir.0).unwrap();
        assert_eq!(saved.recall("test pattern"), vec![]);
        saved.keep("test pattern", &values()).unwrap();
        assert_eq!(saved.recall("test pattern"), values());
        let text = fs::read_to_string(saved.path("test pattern")).unwrap();
        assert!(text.starts_with("{\"@camera\":\"test pattern\",\"brightness\":-20,"));
        // Nothing left behind but the file itself.
        let names: Vec<String> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["controls-test-pattern.json".to_string()]);
        // Another camera whose name makes the same file name: not applied, set aside.
        assert_eq!(saved.recall("Test-Pattern"), vec![]);
        assert!(!saved.path("test pattern").exists());
        assert!(dir.0.join("controls-test-pattern.json.bad").exists());
        saved.forget("test pattern").unwrap();
        saved.keep("test pattern", &values()[..1]).unwrap();
        saved.forget("test pattern").unwrap();
        assert!(!saved.path("test pattern").exists());
        saved.forget("test pattern").unwrap();
    }

    #[test]
    fn files_that_cannot_be_used_are_refused_with_a_reason() {
        for (text, says) in [
            (&b"{\"brightness\":1}"[..], "first entry is not \"@camera\""),
            (b"{\"@camera\":1}", "first entry is not"),
            (b"{}", "first entry is not"),
            (b"", "bad JSON at byte 0"),
            (b"{\"@camera\":\"test pattern\",\"a\":[1]}", "nested values"),
            (
                b"{\"@camera\":\"a webcam\"}",
                "holds the settings of camera \"a webcam\"",
            ),
        ] {
            let why = parse(text, "test pattern").unwrap_err();
            assert!(why.contains(says), "{why}");
        }
        assert_eq!(
            parse(b"{\"@camera\":\"test pattern\"}", "test pattern").unwrap(),
            vec![]
        );

        let dir = Dir::new("large");
        let saved = SavedControls::open(&dir.0).unwrap();
        let mut large = render("test pattern", &values()).into_bytes();
        large.resize(MAX_FILE as usize + 1, b' ');
        fs::write(saved.path("test pattern"), &large).unwrap();
        assert!(
            matches!(saved.read("test pattern"), Err(Problem::Unusable(why)) if why.contains("larger than 64 KiB"))
        );
        let many: Vec<(String, ControlValue)> = (0..10_000)
            .map(|i| (format!("control_{i}"), ControlValue::Number(i as f64)))
            .collect();
        assert!(saved
            .keep("test pattern", &many)
            .unwrap_err()
            .contains("more than 64 KiB"));
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_refused_with_the_fix() {
        let dir = Dir::new("blocked");
        fs::create_dir_all(&dir.0).unwrap();
        fs::write(dir.0.join("file"), b"").unwrap();
        let why = SavedControls::open(&dir.0.join("file/state"))
            .err()
            .unwrap();
        assert!(why.contains("cannot make the state directory"), "{why}");
        assert!(why.contains("--state-dir"), "{why}");
    }
}
