//! HTTPS: the certificate and key files, checked at start-up, and the `tiny_http` server
//! made with them (its rustls support, in binaries built with the `tls` feature).
//!
//! The files are read and their PEM blocks checked here, so that a wrong file stops the
//! program with a line naming it rather than failing inside `tiny_http`.

use std::net::TcpListener;
use std::path::Path;

use tiny_http::Server;

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

/// A `tiny_http` server on `listener`: HTTPS with `tls`, plain HTTP without.
pub fn server(
    listener: TcpListener,
    tls: Option<&TlsFiles>,
) -> Result<Server, Box<dyn std::error::Error + Send + Sync>> {
    match tls {
        None => Server::from_listener(listener, None),
        #[cfg(feature = "tls")]
        Some(files) => Server::from_listener(
            listener,
            Some(tiny_http::SslConfig {
                certificate: files.cert.clone(),
                private_key: files.key.clone(),
            }),
        ),
        #[cfg(not(feature = "tls"))]
        Some(_) => Err("this binary was built without HTTPS support".into()),
    }
}
