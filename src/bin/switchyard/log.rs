//! `switchyard log export`: the request log of a state directory as JSON lines.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum LogCommand {
    /// Write the log's lines (oldest first; the prices in force lead) as JSON lines.
    Export {
        /// The router's `state_dir`.
        #[arg(long)]
        state_dir: PathBuf,
        /// From this time on: RFC 3339 (`2026-12-05T10:00:00Z`) or a time ago (`2h`).
        #[arg(long)]
        since: Option<String>,
        /// Before this time, in the same forms.
        #[arg(long)]
        until: Option<String>,
        /// The output format (JSON lines is the one there is).
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
        format: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(cmd: LogCommand) -> Result<(), String> {
    let LogCommand::Export {
        state_dir,
        since,
        until,
        format: _,
        out,
    } = cmd;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let since = since.map(|t| when(&t, now_ms, "--since")).transpose()?;
    let until = until.map(|t| when(&t, now_ms, "--until")).transpose()?;
    let dir = switchyard::log::dir_of(&state_dir);
    if !dir.is_dir() {
        return Err(format!(
            "{}: no request log here (is it a router's state_dir with [log] enabled?)",
            dir.display()
        ));
    }
    let write = |w: &mut dyn Write| -> Result<switchyard::log::read::Exported, String> {
        let mut w = std::io::BufWriter::new(w);
        let done = switchyard::log::read::export(&dir, since, until, &mut w)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        w.flush().map_err(|e| e.to_string())?;
        Ok(done)
    };
    let done = match &out {
        Some(path) => {
            let mut file =
                std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            write(&mut file)?
        }
        None => write(&mut std::io::stdout().lock())?,
    };
    eprintln!(
        "{} lines exported{}",
        done.lines,
        match done.skipped {
            0 => String::new(),
            n => format!(", {n} unreadable lines skipped (a segment's torn end)"),
        }
    );
    Ok(())
}

/// Unix ms of an RFC 3339 time, or of a time `ago` (`90m`, `2h`, `7d`) before `now_ms`.
fn when(text: &str, now_ms: u64, flag: &str) -> Result<u64, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .map_err(|_| format!("{flag}: `{text}` is before 1970"));
    }
    humantime::parse_duration(text)
        .map(|ago| now_ms.saturating_sub(ago.as_millis() as u64))
        .map_err(|_| format!("{flag}: `{text}` is neither an RFC 3339 time nor a duration like 2h"))
}
