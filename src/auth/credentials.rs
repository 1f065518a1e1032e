//! Who may watch: user names with a password or a standard password hash, and the check
//! of one presented user name and password against them.
//!
//! Accepted hashes are the ones common tools make:
//!
//! * bcrypt, `$2y$`/`$2b$`/`$2a$` (`htpasswd -nB user`),
//! * SHA-512-crypt `$6$` and SHA-256-crypt `$5$` (`openssl passwd -6`, `mkpasswd -m sha-512`).
//!
//! A password given in plain (`--auth user:password`) is kept only as its SHA-256 digest
//! and compared digest to digest in constant time. Nothing here ever formats a password
//! or a hash into a message.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How one user's password is checked.
#[derive(Clone, PartialEq, Eq)]
enum Secret {
    /// SHA-256 of the password given in plain.
    Plain([u8; 32]),
    /// A bcrypt hash string.
    Bcrypt(String),
    /// A SHA-256-crypt or SHA-512-crypt hash string.
    ShaCrypt(String),
}

/// The kind of a stored secret, for messages and measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Bcrypt,
    ShaCrypt,
}

#[derive(Clone, PartialEq, Eq)]
struct User {
    name: String,
    secret: Secret,
}

/// The users allowed to watch.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    users: Vec<User>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({} users)", self.users.len())
    }
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Adds `user:password` as given on the command line.
    pub fn add_plain(&mut self, pair: &str) -> Result<(), String> {
        let (name, password) = split_pair(pair).ok_or_else(|| {
            "expected USER:PASSWORD with a non-empty user name without ':'".to_string()
        })?;
        if password.is_empty() {
            return Err("the password is empty".into());
        }
        self.insert(
            name,
            Secret::Plain(Sha256::digest(password.as_bytes()).into()),
        )
    }

    /// Adds every `user:hash` line of `text`, read from `path` (named in errors with the
    /// line number). Blank lines and lines starting with `#` are skipped.
    pub fn add_file_text(&mut self, path: &Path, text: &str) -> Result<(), String> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{} line {}", path.display(), i + 1);
            let (name, hash) =
                split_pair(line).ok_or_else(|| format!("{}: expected USER:HASH", at()))?;
            let secret = parse_hash(hash).map_err(|why| format!("{}: {why}", at()))?;
            self.insert(name, secret)
                .map_err(|why| format!("{}: {why}", at()))?;
        }
        Ok(())
    }

    /// Reads an auth file (see [`Credentials::add_file_text`]).
    pub fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the auth file {}: {e}", path.display()))?;
        let before = self.users.len();
        self.add_file_text(path, &text)?;
        if self.users.len() == before {
            return Err(format!(
                "the auth file {} has no USER:HASH line",
                path.display()
            ));
        }
        Ok(())
    }

    fn insert(&mut self, name: &str, secret: Secret) -> Result<(), String> {
        if self.users.iter().any(|u| u.name == name) {
            return Err(format!("user '{name}' is listed twice"));
        }
        self.users.push(User {
            name: name.to_string(),
            secret,
        });
        Ok(())
    }

    /// The kind of the first user's secret (for measurements).
    pub fn first_kind(&self) -> Option<Kind> {
        self.users.first().map(|u| u.secret.kind())
    }

    /// The kind of each user's secret, in the order they were added (for measurements).
    pub fn kinds(&self) -> Vec<Kind> {
        self.users.iter().map(|u| u.secret.kind()).collect()
    }

    /// The user whose secret is estimated dearest to check, from its kind and cost alone
    /// (bcrypt by its cost, SHA-crypt by its rounds); the first of equals.
    pub fn costliest(&self) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for (i, user) in self.users.iter().enumerate() {
            let cost = user.secret.estimated_cost();
            if best.is_none_or(|(_, b)| cost > b) {
                best = Some((i, cost));
            }
        }
        best.map(|(i, _)| i)
    }

    /// One user for each distinct kind and cost of secret: the ones worth timing to find
    /// which check is really the slowest on this machine.
    pub fn cost_classes(&self) -> Vec<usize> {
        let mut seen: Vec<(Kind, u64)> = Vec::new();
        let mut picked = Vec::new();
        for (i, user) in self.users.iter().enumerate() {
            let class = (user.secret.kind(), user.secret.estimated_cost());
            if !seen.contains(&class) {
                seen.push(class);
                picked.push(i);
            }
        }
        picked
    }

    /// Checks `password` against the secret of user number `index` (for timing a
    /// check); false when there is no such user.
    pub fn check_secret(&self, index: usize, password: &str) -> bool {
        self.users
            .get(index)
            .is_some_and(|u| u.secret.matches(password))
    }

    /// True when `name` exists and `password` is theirs. An unknown name is checked
    /// against the secret estimated dearest ([`Credentials::costliest`]), so that it
    /// costs at least as much as a wrong password for any user.
    pub fn verify(&self, name: &str, password: &str) -> bool {
        self.verify_with_decoy(name, password, self.costliest().unwrap_or(0))
            .0
    }

    /// Like [`Credentials::verify`], checking an unknown name against the secret of user
    /// number `decoy`. Also returns the number of the user whose secret was checked.
    /// Every user name is compared, in constant time for names of equal length.
    pub fn verify_with_decoy(&self, name: &str, password: &str, decoy: usize) -> (bool, usize) {
        let mut found: Option<usize> = None;
        for (i, user) in self.users.iter().enumerate() {
            let same = bool::from(user.name.as_bytes().ct_eq(name.as_bytes()));
            if same && found.is_none() {
                found = Some(i);
            }
        }
        match found {
            Some(i) => (self.check_secret(i, password), i),
            None => {
                let _ = self.check_secret(decoy, password);
                (false, decoy)
            }
        }
    }
}

impl Secret {
    /// Roughly what one check costs, in nanoseconds of one x86-64 core (measured with
    /// `cargo bench --bench auth_cost`): good enough to rank secrets before anything is
    /// timed. The ranking of different kinds differs between machines; the guard times
    /// them at start to correct it.
    fn estimated_cost(&self) -> u64 {
        match self {
            Secret::Plain(_) => 1,
            Secret::Bcrypt(hash) => {
                let cost = hash.get(4..6).and_then(|c| c.parse::<u32>().ok());
                60_000u64.saturating_mul(1u64 << cost.unwrap_or(4).min(31))
            }
            Secret::ShaCrypt(hash) => {
                let per_round = if hash.starts_with("$6$") { 340 } else { 100 };
                let rounds = hash
                    .get(3..)
                    .and_then(|rest| rest.strip_prefix("rounds="))
                    .and_then(|rest| rest.split('$').next())
                    .and_then(|r| r.parse::<u64>().ok())
                    .unwrap_or(5000);
                per_round * rounds
            }
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Secret::Plain(_) => Kind::Plain,
            Secret::Bcrypt(_) => Kind::Bcrypt,
            Secret::ShaCrypt(_) => Kind::ShaCrypt,
        }
    }

    fn matches(&self, password: &str) -> bool {
        match self {
            Secret::Plain(digest) => {
                let presented: [u8; 32] = Sha256::digest(password.as_bytes()).into();
                presented.ct_eq(digest).into()
            }
            Secret::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Secret::ShaCrypt(hash) => {
                use sha_crypt::PasswordVerifier;
                sha_crypt::ShaCrypt::default()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            }
        }
    }
}

/// `user:rest` with a non-empty user name (which cannot hold ':', as in HTTP Basic).
fn split_pair(s: &str) -> Option<(&str, &str)> {
    let (name, rest) = s.split_once(':')?;
    if name.is_empty() || name.chars().any(char::is_control) {
        return None;
    }
    Some((name, rest))
}

const CRYPT64: &str = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn is_crypt64(s: &str) -> bool {
    s.chars().all(|c| CRYPT64.contains(c))
}

/// Checks the shape of a stored hash (without the cost of verifying anything).
fn parse_hash(hash: &str) -> Result<Secret, String> {
    const KNOWN: &str = "expected a bcrypt hash ($2y$, $2b$; htpasswd -nB) or a SHA-crypt hash \
                         ($6$, $5$; openssl passwd -6)";
    if hash.starts_with("$2") {
        let b = hash.as_bytes();
        let shaped = b.len() == 60
            && matches!(hash.get(..4), Some("$2y$" | "$2b$" | "$2a$"))
            && b[6] == b'$'
            && hash[4..6]
                .parse::<u32>()
                .is_ok_and(|c| (4..=31).contains(&c))
            && is_crypt64(&hash[7..]);
        return if shaped {
            Ok(Secret::Bcrypt(hash.to_string()))
        } else {
            Err("malformed bcrypt hash (expected $2y$NN$ and 53 characters)".into())
        };
    }
    let len = match hash.get(..3) {
        Some("$6$") => 86,
        Some("$5$") => 43,
        _ => return Err(KNOWN.into()),
    };
    let mut fields: Vec<&str> = hash[3..].split('$').collect();
    if let Some(rounds) = fields.first().and_then(|f| f.strip_prefix("rounds=")) {
        if !rounds
            .parse::<u32>()
            .is_ok_and(|r| (1000..=999_999_999).contains(&r))
        {
            return Err("malformed SHA-crypt hash: rounds must be 1000 to 999999999".into());
        }
        fields.remove(0);
    }
    let shaped = fields.len() == 2
        && !fields[0].is_empty()
        && fields[0].len() <= 16
        && !fields[0].contains(':')
        && fields[1].len() == len
        && is_crypt64(fields[1]);
    if !shaped {
        return Err(format!(
            "malformed SHA-crypt hash (expected {}[rounds=N$]SALT${len} characters)",
            &hash[..3]
        ));
    }
    Ok(Secret::ShaCrypt(hash.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `openssl passwd -6 -salt abcdefgh secret` and `openssl passwd -5 -salt abcdefgh secret`.
    const SHA512: &str = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";
    const SHA256: &str = "$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.";

    #[test]
    fn plain_pairs() {
        let mut c = Credentials::default();
        c.add_plain("ann:pa:ss").unwrap();
        assert!(c.verify("ann", "pa:ss"));
        assert!(!c.verify("ann", "pa:sS"));
        assert!(!c.verify("bob", "pa:ss"));
        assert!(c.add_plain("nocolon").is_err());
        assert!(c.add_plain(":pw").is_err());
        assert!(c.add_plain("x:").is_err());
        assert!(c.add_plain("ann:other").unwrap_err().contains("twice"));
        assert_eq!(format!("{c:?}"), "Credentials(1 users)");
    }

    #[test]
    fn hash_files() {
        let bc = bcrypt::hash("secret", 4).unwrap();
        let text = format!("# comment\n\nann:{SHA512}\nbob:{SHA256}\ncid:{bc}\n");
        let mut c = Credentials::default();
        c.add_file_text(Path::new("users"), &text).unwrap();
        assert_eq!(c.len(), 3);
        for user in ["ann", "bob", "cid"] {
            assert!(c.verify(user, "secret"), "{user}");
            assert!(!c.verify(user, "Secret"), "{user}");
        }
        assert!(!c.verify("dan", "secret"));
    }

    #[test]
    fn bad_lines_name_file_and_line_and_never_the_hash() {
        let cases = [
            ("ann:$1$abc$def\n", "line 1", "expected a bcrypt"),
            ("\nann:$2y$05$short\n", "line 2", "malformed bcrypt"),
            ("ann\n", "line 1", "expected USER:HASH"),
            ("ann:plaintext\n", "line 1", "expected a bcrypt"),
            ("ann:$6$salt$tooshort\n", "line 1", "malformed SHA-crypt"),
            (&format!("ann:{SHA512}\nann:{SHA256}\n"), "line 2", "twice"),
        ];
        for (text, line, why) in cases {
            let mut c = Credentials::default();
            let e = c
                .add_file_text(Path::new("/etc/picam-users"), text)
                .unwrap_err();
            assert!(e.starts_with(&format!("/etc/picam-users {line}: ")), "{e}");
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("short") && !e.contains("abc"), "{e}");
        }
    }

    #[test]
    fn an_unknown_name_is_checked_against_the_dearest_secret() {
        // A cheap first user, then dearer ones: the unknown name must not get the first.
        let bc6 = bcrypt::hash("secret", 6).unwrap();
        let text = format!("ann:{SHA256}\nbob:{bc6}\ncid:{SHA512}\n");
        let mut c = Credentials::default();
        c.add_file_text(Path::new("users"), &text).unwrap();
        c.add_plain("dan:secret").unwrap();
        assert_eq!(c.costliest(), Some(1));
        assert_eq!(c.verify_with_decoy("nobody", "secret", 1), (false, 1));
        assert_eq!(c.verify_with_decoy("cid", "wrong", 1), (false, 2));
        assert_eq!(c.verify_with_decoy("dan", "secret", 1), (true, 3));
        assert!(!c.verify("nobody", "secret"));
        assert_eq!(c.cost_classes(), vec![0, 1, 2, 3]);

        // SHA-crypt with many rounds outweighs a cheap bcrypt.
        let many = "$6$rounds=200000$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPPrVACtLtip/cZ/1GM/O6IND4WQhG.";
        let bc4 = bcrypt::hash("secret", 4).unwrap();
        let mut c = Credentials::default();
        let text = format!("ann:{bc4}\nbob:{SHA512}\ncid:{many}\ndee:{bc4}\n");
        c.add_file_text(Path::new("users"), &text).unwrap();
        assert_eq!(c.costliest(), Some(2));
        assert_eq!(c.cost_classes(), vec![0, 1, 2]);
        assert_eq!(Credentials::default().costliest(), None);
        assert_eq!(
            Credentials::default().verify_with_decoy("x", "y", 0),
            (false, 0)
        );
    }

    #[test]
    fn a_bcrypt_prefix_split_inside_a_character_is_refused_not_a_panic() {
        let hash = format!("$2\u{e9}{}", "a".repeat(57));
        assert_eq!(hash.len(), 61);
        let hash = format!("$2x\u{e9}{}", "a".repeat(55));
        assert_eq!(hash.len(), 60);
        let mut c = Credentials::default();
        let e = c
            .add_file_text(Path::new("users"), &format!("ann:{hash}\n"))
            .unwrap_err();
        assert!(e.contains("malformed bcrypt"), "{e}");
    }
}
