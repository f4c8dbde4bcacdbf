//! The CLI's default cache: one file per instance under `glpi-network/` in the user's cache
//! directory; a bare command uses the only one, `--url` picks one, and with several and no
//! `--url` the command exits 2 listing them. `--cache PATH` still names one file.

use crate::cli::one_json;
use crate::helpers::spawn_server;
use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;
use std::path::{Path, PathBuf};

const A: &str = "https://glpi-a.example.com/glpi";
const B: &str = "https://glpi-b.example.com";

/// A home directory of its own, with `XDG_CACHE_HOME` inside it.
struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Self {
        Home(tempfile::tempdir().unwrap())
    }

    fn xdg_cache(&self) -> PathBuf {
        self.0.path().join("xdg-cache")
    }

    /// The binary with this home, no `--cache` and no inherited configuration.
    fn cli(&self) -> assert_cmd::Command {
        let mut cmd = cargo_bin_cmd!("glpi-network");
        for var in [
            "GLPI_NETWORK_SERVER",
            "GLPI_NETWORK_KEY",
            "GLPI_NETWORK_ISSUER",
            "GLPI_NETWORK_LOG",
            "GLPI_NETWORK_CA_FILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.0.path())
            .env("XDG_CACHE_HOME", self.xdg_cache())
            .args(["--timeout", "5"]);
        cmd
    }
}

/// The cache files (`*.json`) in `dir`.
fn cache_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[track_caller]
fn instance_of(out: &assert_cmd::assert::Assert) -> String {
    let v = one_json(&out.get_output().stdout);
    v["instance_url"].as_str().unwrap().to_owned()
}

#[test]
fn each_instance_has_its_own_cache_file_and_url_picks_one() {
    let server = spawn_server();
    let home = Home::new();
    let dir = home.xdg_cache().join("glpi-network");
    let (_, _, ka) = server.new_key("basic");
    let (_, _, kb) = server.new_key("standard");

    home.cli()
        .args(["--server", &server.url, "register", ka.expose(), "--url", A])
        .assert()
        .code(0);
    assert_eq!(cache_files(&dir).len(), 1);
    // The only instance: a bare command uses it.
    let out = home.cli().args(["status", "--json"]).assert().code(0);
    assert_eq!(instance_of(&out), A);

    home.cli()
        .args(["--server", &server.url, "register", kb.expose(), "--url", B])
        .assert()
        .code(0);
    let files = cache_files(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("https_glpi-a.example.com_glpi-"))
    );

    // Two instances: a bare command is ambiguous, exits 2 and lists them.
    for cmd in ["validate", "status", "release"] {
        home.cli()
            .arg(cmd)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(A))
            .stderr(predicate::str::contains(B))
            .stderr(predicate::str::contains("--url"));
    }
    let out = home.cli().args(["status", "--json"]).assert().code(2);
    let v = one_json(&out.get_output().stdout);
    assert_eq!(v["exit_code"], 2);
    assert_eq!(v["error"]["kind"], "usage");
    assert_eq!(v["error"]["instances"], serde_json::json!([A, B]));
    assert_eq!(cache_files(&dir).len(), 2, "nothing released");

    // --url picks one, in any of its aliases; the second registration overwrote nothing.
    let alias = "https://GLPI-A.example.com:443/glpi/index.php";
    let out = home
        .cli()
        .args(["status", "--json", "--url", alias])
        .assert()
        .code(0);
    assert_eq!(instance_of(&out), A);
    let out = home
        .cli()
        .args(["validate", "--json", "--url", B])
        .assert()
        .code(0);
    assert_eq!(instance_of(&out), B);
    assert_eq!(one_json(&out.get_output().stdout)["offer"], "standard");
    // `test` with its --server needs no cache.
    home.cli()
        .args(["--server", &server.url, "test"])
        .assert()
        .code(0);

    home.cli().args(["release", "--url", A]).assert().code(0);
    assert_eq!(server.registrations(), 1);
    assert_eq!(cache_files(&dir).len(), 1);
    // One instance left: bare commands use it again.
    let out = home.cli().args(["validate", "--json"]).assert().code(0);
    assert_eq!(instance_of(&out), B);
    home.cli().arg("release").assert().code(0);
    assert_eq!(server.registrations(), 0);
    assert!(cache_files(&dir).is_empty());
}

#[test]
fn cache_still_names_one_file_and_home_alone_locates_the_default() {
    let server = spawn_server();
    let home = Home::new();
    let file = home.0.path().join("elsewhere").join("one.json");
    let (_, _, ka) = server.new_key("basic");
    let (_, _, kb) = server.new_key("basic");
    home.cli()
        .arg("--cache")
        .arg(&file)
        .args(["--server", &server.url, "register", ka.expose(), "--url", A])
        .assert()
        .code(0);
    assert!(file.exists());
    assert!(
        !home.xdg_cache().exists(),
        "the default directory is not used"
    );
    let out = home
        .cli()
        .arg("--cache")
        .arg(&file)
        .args(["status", "--json"])
        .assert()
        .code(0);
    assert_eq!(instance_of(&out), A);

    // Without XDG_CACHE_HOME the default directory is ~/.cache/glpi-network.
    home.cli()
        .env_remove("XDG_CACHE_HOME")
        .args(["--server", &server.url, "register", kb.expose(), "--url", B])
        .assert()
        .code(0);
    let dir = home.0.path().join(".cache").join("glpi-network");
    assert_eq!(cache_files(&dir).len(), 1);
    let out = home
        .cli()
        .env_remove("XDG_CACHE_HOME")
        .args(["status", "--json"])
        .assert()
        .code(0);
    assert_eq!(instance_of(&out), B);
}
