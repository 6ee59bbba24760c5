//! `switchyard demo --replicas N`: N routers sharing through Redis, in one process. Each
//! replica has its own directory (config, price sheets, presets, state) beside the first's,
//! listens on the next port, and joins the fleet through a `redis-server` the demo starts on
//! a free loopback port (or `--redis-url`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DemoError;

/// A `redis-server` the demo started; stopped when dropped.
pub struct RedisProcess(Child);

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `redis-server` on a free loopback port without persistence; its URL.
pub fn start_redis() -> Result<(RedisProcess, String), DemoError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(DemoError::Redis)?
        .port();
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null());
    // Its own process group: Ctrl-C stops the demo, which then stops Redis after the
    // routers, instead of Redis dying under them.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().map_err(DemoError::Redis)?;
    let redis = RedisProcess(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(DemoError::Redis(std::io::Error::other(
                "redis-server did not listen within 5 s",
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((redis, format!("redis://127.0.0.1:{port}/")))
}

/// The `[fleet]` section every replica's config gets.
pub fn section(redis_url: &str) -> String {
    format!("\n[fleet]\nredis_url = \"{redis_url}\"\nsync_interval = \"1s\"\n")
}

/// Writes replica `k`'s directory (k ≥ 1) from the first replica's files: the same config
/// but for its address, and copies of the price sheets and presets. Returns its config.
pub fn write_replica(first: &Path, k: usize, listen: SocketAddr) -> Result<PathBuf, DemoError> {
    let base = first.parent().unwrap_or(Path::new("."));
    let dir = base.join(format!("replica-{}", k + 1));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| DemoError::Write { path, source }
    };
    for sub in ["pricing", "routing"] {
        let (from, to) = (base.join(sub), dir.join(sub));
        let _ = std::fs::remove_dir_all(&to);
        std::fs::create_dir_all(&to).map_err(io(&to))?;
        for entry in std::fs::read_dir(&from).map_err(io(&from))?.flatten() {
            let target = to.join(entry.file_name());
            std::fs::copy(entry.path(), &target).map_err(io(&target))?;
        }
    }
    let text = std::fs::read_to_string(first).map_err(io(first))?;
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("listen = ") {
                format!("listen = \"{listen}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("switchyard.toml");
    std::fs::write(&path, text + "\n").map_err(io(&path))?;
    Ok(path)
}
