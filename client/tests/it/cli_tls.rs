//! The CLI behind TLS with a private certificate authority, as self-hosted servers often are:
//! the real server behind Debian's nginx, with a CA and a certificate for `localhost` made
//! here. Without the CA the client refuses the certificate (exit 3, naming the problem); with
//! `--ca-file`, `GLPI_NETWORK_CA_FILE` or the platform's store (`SSL_CERT_FILE`) it connects.

use crate::cli::cli;
use crate::helpers::{CacheDir, INSTANCE, spawn_server};
use predicates::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx, or `None` (with the reason printed) outside CI; in CI its absence fails the test.
fn nginx_or_skip() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        let why = "nginx is not installed (Debian: apt-get install nginx-light)";
        if std::env::var_os("CI").is_some() {
            panic!("{why}: the TLS proxy test cannot run");
        }
        eprintln!("skipped: {why}");
    }
    found
}

/// A CA (`ca.pem`) and a certificate for `localhost` it signed (`server.pem`, `server.key`).
fn make_pki(dir: &Path) -> PathBuf {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "GLPI Network test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    ca_pem
}

/// nginx terminating TLS on a free port of 127.0.0.1 and passing everything to `upstream`;
/// stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(bin: &Path, dir: &Path, upstream: &str) -> Nginx {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name localhost;\n    \
             ssl_certificate {d}/server.pem;\n    ssl_certificate_key {d}/server.key;\n    \
             location / {{ proxy_pass {upstream}; proxy_http_version 1.1; }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = || std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nginx exited ({status}): {}", log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx is not listening: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, port }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CLI with no CA of its own and no platform store override.
fn bare(cache: &CacheDir) -> assert_cmd::Command {
    let mut cmd = cli(cache);
    cmd.env_remove("GLPI_NETWORK_CA_FILE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    cmd
}

#[test]
fn test_and_register_through_a_tls_proxy_trust_a_private_ca_from_ca_file_env_or_platform() {
    let Some(bin) = nginx_or_skip() else { return };
    let server = spawn_server();
    let dir = tempfile::tempdir().unwrap();
    let ca = make_pki(dir.path());
    let nginx = Nginx::start(&bin, dir.path(), &server.url);
    let url = format!("https://localhost:{}", nginx.port);
    let (_, _, key) = server.new_key("basic");
    let cache = CacheDir::new();
    // The tokens name the server's own URL as issuer (it has no --public-url).
    let register = [
        "--server",
        &url,
        "--issuer",
        &server.url,
        "register",
        key.expose(),
        "--url",
        INSTANCE,
    ];

    // Without the CA: the certificate is refused, exit 3, and the error names the problem.
    bare(&cache)
        .args(["--server", &url, "test"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("FAIL  ping"))
        .stdout(predicate::str::contains("FAIL  tls"))
        .stdout(predicate::str::contains("UnknownIssuer"))
        .stdout(predicate::str::contains("--ca-file"));
    bare(&cache)
        .args(register)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("UnknownIssuer"))
        .stderr(predicate::str::contains("--ca-file"));
    assert_eq!(server.registrations(), 0);

    // --ca-file PEM.
    bare(&cache)
        .arg("--ca-file")
        .arg(&ca)
        .args(["--server", &url, "test"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ok    tls"));
    bare(&cache)
        .arg("--ca-file")
        .arg(&ca)
        .args(register)
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("valid:"));
    assert_eq!(server.registrations(), 1);

    // GLPI_NETWORK_CA_FILE.
    bare(&cache)
        .env("GLPI_NETWORK_CA_FILE", &ca)
        .args(["--server", &url, "test"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ok    tls"));
    bare(&cache)
        .env("GLPI_NETWORK_CA_FILE", &ca)
        .args(register)
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("valid:"));
    bare(&cache)
        .env("GLPI_NETWORK_CA_FILE", &ca)
        .arg("validate")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("valid:"));

    // The platform's store, here pointed at the CA the way OpenSSL is.
    bare(&cache)
        .env("SSL_CERT_FILE", &ca)
        .args(["--server", &url, "test"])
        .assert()
        .code(0);

    // A CA file that is not one is a usage error naming it.
    bare(&cache)
        .arg("--ca-file")
        .arg(dir.path().join("nginx.conf"))
        .args(["--server", &url, "test"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nginx.conf"));
}
