//! HTTPS: the certificate and key files, checked at start-up, and the TLS connections
//! made with them (rustls, in binaries built with the `tls` feature).
//!
//! The files are read and their PEM blocks checked here, so that a wrong file stops the
//! program with a line naming it rather than failing on the first connection.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

/// The PEM contents of the certificate chain and of its private key.
#[derive(Clone)]
pub struct TlsFiles {
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    cert: Vec<u8>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    key: Vec<u8>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsFiles(..)")
    }
}

/// Reads and checks `cert` and `key`.
pub fn load(cert: &Path, key: &Path) -> Result<TlsFiles, String> {
    let read = |what: &str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
    };
    let files = TlsFiles {
        cert: read("certificate", cert)?,
        key: read("key", key)?,
    };
    check(&files, cert, key)?;
    Ok(files)
}

#[cfg(feature = "tls")]
fn check(files: &TlsFiles, cert: &Path, key: &Path) -> Result<(), String> {
    let certs = rustls_pemfile::certs(&mut files.cert.as_slice()).unwrap_or_default();
    if certs.is_empty() {
        return Err(format!(
            "the TLS certificate {} holds no PEM CERTIFICATE block",
            cert.display()
        ));
    }
    let pkcs8 = rustls_pemfile::pkcs8_private_keys(&mut files.key.as_slice()).unwrap_or_default();
    let rsa = rustls_pemfile::rsa_private_keys(&mut files.key.as_slice()).unwrap_or_default();
    if pkcs8.is_empty() && rsa.is_empty() {
        return Err(format!(
            "the TLS key {} holds no unencrypted PKCS#8 (BEGIN PRIVATE KEY) or RSA \
             (BEGIN RSA PRIVATE KEY) block; convert it with `openssl pkcs8 -topk8 -nocrypt`",
            key.display()
        ));
    }
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn check(_: &TlsFiles, _: &Path, _: &Path) -> Result<(), String> {
    Err("this binary was built without HTTPS support; build it with --features tls".into())
}

/// Makes TLS connections with one certificate and key, for every connection accepted.
pub struct Acceptor {
    #[cfg(feature = "tls")]
    config: std::sync::Arc<rustls::ServerConfig>,
}

/// A TLS connection over a shared TCP socket.
#[cfg(feature = "tls")]
pub type TlsStream = rustls::StreamOwned<rustls::ServerConnection, SharedTcp>;

/// A TLS connection (never made in a binary without HTTPS).
#[cfg(not(feature = "tls"))]
pub enum TlsStream {}

#[cfg(not(feature = "tls"))]
impl io::Read for TlsStream {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
}

#[cfg(not(feature = "tls"))]
impl io::Write for TlsStream {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    fn flush(&mut self) -> io::Result<()> {
        match *self {}
    }
}

/// Tells the peer that no more data follows (TLS `close_notify`).
pub fn close_notify(stream: &mut TlsStream) {
    #[cfg(feature = "tls")]
    {
        stream.conn.send_close_notify();
        let _ = io::Write::flush(stream);
    }
    #[cfg(not(feature = "tls"))]
    match *stream {}
}

/// A TCP socket shared with the registry of waiting connections (which may shut it
/// down), read and written through a shared reference.
pub struct SharedTcp(pub Arc<TcpStream>);

impl io::Read for SharedTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl io::Write for SharedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Acceptor {
    /// The TLS settings for `files`: TLS 1.2 and 1.3 with rustls's safe defaults.
    #[cfg(feature = "tls")]
    pub fn new(files: &TlsFiles) -> Result<Acceptor, String> {
        let certs: Vec<rustls::Certificate> = rustls_pemfile::certs(&mut files.cert.as_slice())
            .map_err(|e| format!("cannot read the certificate: {e}"))?
            .into_iter()
            .map(rustls::Certificate)
            .collect();
        let mut keys = rustls_pemfile::pkcs8_private_keys(&mut files.key.as_slice())
            .map_err(|e| format!("cannot read the key: {e}"))?;
        if keys.is_empty() {
            keys = rustls_pemfile::rsa_private_keys(&mut files.key.as_slice())
                .map_err(|e| format!("cannot read the key: {e}"))?;
        }
        let key = keys
            .into_iter()
            .next()
            .ok_or_else(|| "the key file holds no private key".to_string())?;
        let config = rustls::ServerConfig::builder()
            .with_safe_defaults()
            .with_no_client_auth()
            .with_single_cert(certs, rustls::PrivateKey(key))
            .map_err(|e| format!("the certificate and key do not make a TLS server: {e}"))?;
        Ok(Acceptor {
            config: std::sync::Arc::new(config),
        })
    }

    #[cfg(not(feature = "tls"))]
    pub fn new(_: &TlsFiles) -> Result<Acceptor, String> {
        Err("this binary was built without HTTPS support".into())
    }

    /// A TLS connection over `socket`; the handshake happens on its first read.
    #[cfg(feature = "tls")]
    pub fn wrap(&self, socket: Arc<TcpStream>) -> Result<TlsStream, String> {
        let conn = rustls::ServerConnection::new(self.config.clone()).map_err(|e| e.to_string())?;
        Ok(rustls::StreamOwned::new(conn, SharedTcp(socket)))
    }

    #[cfg(not(feature = "tls"))]
    pub fn wrap(&self, _: Arc<TcpStream>) -> Result<TlsStream, String> {
        Err("this binary was built without HTTPS support".into())
    }
}
