//! The sandbox's credentials: a throwaway CA, a serving certificate for
//! 127.0.0.1 signed by it, a bearer token, and the kubeconfig that ties
//! them together (context `sandbox`, namespace `default`).
//!
//! Token authentication rather than client certificates: kubectl and kube-rs
//! both support it natively, and it keeps the server free of a client
//! certificate verifier. Every request without the token gets the real
//! 401 `Unauthorized` Status.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The user the token authenticates as (what RBAC messages name).
pub const USER: &str = "sandbox-user";

/// What the sandbox writes and serves.
pub struct Credentials {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
    pub token: String,
}

impl Credentials {
    pub fn generate() -> Result<Credentials, String> {
        let err = |e: rcgen::Error| format!("generating certificates: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "netdiag-sandbox-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(err)?;
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(err)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        server_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer).map_err(err)?;

        let chain = vec![CertificateDer::from(server_cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("TLS setup: {e}"))?;
        // HTTP/1.1 only (see Cargo.toml): clients that prefer h2 fall back.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        Ok(Credentials {
            ca_pem: ca_cert.pem(),
            server_config: Arc::new(config),
            token: random_hex(16)?,
        })
    }

    /// Writes `dir/ca.crt` and `dir/kubeconfig`; returns the kubeconfig's path.
    pub fn write_kubeconfig(&self, dir: &Path, addr: SocketAddr) -> Result<PathBuf, String> {
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, &self.ca_pem).map_err(|e| format!("writing {}: {e}", ca.display()))?;
        let ca = ca
            .canonicalize()
            .map_err(|e| format!("resolving {}: {e}", ca.display()))?;
        let kubeconfig = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: sandbox\n  cluster:\n    server: https://{addr}\n    certificate-authority: {ca}\n\
             users:\n\
             - name: {USER}\n  user:\n    token: {token}\n\
             contexts:\n\
             - name: sandbox\n  context:\n    cluster: sandbox\n    user: {USER}\n    namespace: default\n\
             current-context: sandbox\n",
            ca = ca.display(),
            token = self.token,
        );
        std::fs::write(&kubeconfig, text)
            .map_err(|e| format!("writing {}: {e}", kubeconfig.display()))?;
        Ok(kubeconfig)
    }
}

/// `n` random bytes from the kernel, as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
