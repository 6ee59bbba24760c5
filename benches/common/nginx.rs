//! nginx as the reference proxy: one worker process (no master), upstream keepalive,
//! `proxy_buffering off`, access log off — a proxy that passes requests and streams on,
//! as a router does, with no routing. Debian's package (`apt-get install nginx`); without
//! it the reference column is skipped and the bench says so.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::Proc;

/// The nginx binary, if installed.
fn binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("addr").port()
}

/// A running nginx in front of `upstream` (`http://127.0.0.1:PORT/...`): its base URL, with
/// the upstream's path kept (`http://127.0.0.1:NGINX/v1` for `.../v1`).
pub struct Nginx {
    pub proc: Proc,
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Starts nginx in front of `upstream_url`, or says why it cannot.
pub fn start(upstream_url: &str) -> Result<Nginx, String> {
    let bin = binary().ok_or("nginx not installed (apt-get install nginx)")?;
    let rest = upstream_url
        .strip_prefix("http://")
        .ok_or("the upstream is not http://")?;
    let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path().display();
    let port = free_port();
    let conf = format!(
        "worker_processes 1;\nmaster_process off;\ndaemon off;\nerror_log {d}/error.log crit;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream up {{ server {host_port}; keepalive 512; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://up;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}\n"
    );
    let path_conf = dir.path().join("nginx.conf");
    std::fs::write(&path_conf, conf).map_err(|e| e.to_string())?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&path_conf)
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{bin}: {e}"))?;
    let proc = Proc(child);
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let url = format!("http://127.0.0.1:{port}/{path}");
            return Ok(Nginx {
                proc,
                url: url.trim_end_matches('/').to_owned(),
                _dir: dir,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("nginx did not start listening".into())
}

/// CPU time a process has used (user + system), from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in clock ticks, 100 a second on every common configuration.
    Some(Duration::from_millis(ticks * 10))
}
