//! The real `tollgate` binary in its own process: started on a free loopback port against a
//! database, stopped with a signal. Tests that need a process boundary (a kill, several
//! instances, the CLI beside a server) start it from here; so does the `meter_http` benchmark.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The secret every process of a test shares (tokens minted by one verify on the others).
pub const SECRET: &str = "test-secret-0123456789abcdef";

pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `127.0.0.1:PORT`, for tests that name the instance without a scheme.
    #[allow(dead_code)]
    pub addr: String,
}

/// `tollgate serve` on a free port against `url`, with `env` added; returns once it accepts.
pub fn start_server_with(url: &str, env: &[(&str, &str)]) -> Server {
    start_server_logging(url, env, Stdio::null())
}

/// [`start_server_with`], the server's log (stderr) going to `log`.
pub fn start_server_logging(url: &str, env: &[(&str, &str)], log: impl Into<Stdio>) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = tollgate_command(url);
    cmd.args(["serve", "--addr", &addr])
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start the tollgate binary");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        child,
        base: format!("http://{addr}"),
        addr,
    }
}

pub fn start_server(url: &str) -> Server {
    start_server_with(url, &[])
}

/// The binary with the database and the shared secret set, for any subcommand.
pub fn tollgate_command(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.env("TOLLGATE_DATABASE_URL", url)
        .env("TOLLGATE_SECRET", SECRET);
    cmd
}

impl Server {
    /// SIGTERM, then waits: the server finishes what is in flight and stops.
    #[allow(dead_code)]
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
