//! The TLS identity of `serve`, read from PEM files and read again on SIGHUP, so a renewed
//! certificate (Let's Encrypt renews every 60 to 90 days) is taken without a restart.
//! Connections open at the time keep the one they started with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate every handshake gets, replaceable while serving.
pub(crate) struct Identity {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads `cert` (the chain, leaf first) and `key`.
    pub(crate) fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read(cert, key, &provider)?;
        Ok(Arc::new(Identity {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(current),
        }))
    }

    /// The files again; on any problem the identity in use stays, and the error says why.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        let fresh = read(&self.cert, &self.key, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// A server configuration whose handshakes ask this identity (HTTP/2 offered by ALPN).
    pub(crate) fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// [`Identity::reload`], with its outcome logged.
    pub(crate) fn reload_and_log(&self) {
        match self.reload() {
            Ok(()) => tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded"),
            Err(e) => tracing::error!(
                cert = %self.cert.display(),
                "TLS certificate not reloaded, the one in use stays: {e:#}"
            ),
        }
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading certificates from {}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key from {}", key.display()))?;
    let identity = CertifiedKey::from_der(chain, key, provider)
        .context("the certificate and key do not make a TLS identity")?;
    Ok(Arc::new(identity))
}
