//! A spawned evertoken (or helper) whose stderr a test reads line by line while
//! it runs: an interactive login printing its authorize URL, a server printing
//! where it listens.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Spawned {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// The stderr lines read so far.
    pub seen: Vec<String>,
    stdout: Option<JoinHandle<String>>,
}

impl Spawned {
    /// Spawns `cmd`, stdin closed, stdout collected on a thread, stderr read line
    /// by line.
    pub fn start(cmd: &mut Command) -> Spawned {
        Self::spawn(cmd.stdin(Stdio::null()))
    }

    /// [`Spawned::start`] with stdin as the caller set it (piped, for a test
    /// that types on it).
    pub fn spawn(cmd: &mut Command) -> Spawned {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Spawned {
            child,
            lines,
            seen: Vec::new(),
            stdout: Some(stdout),
        }
    }

    /// The first stderr line containing `needle`, from `needle` on and trimmed
    /// (waits up to 30 s; fails with the stderr so far).
    #[track_caller]
    pub fn rest_of_line(&mut self, needle: &str) -> String {
        let l = self.line_where(&format!("with {needle}"), |l| l.contains(needle));
        let i = l.find(needle).unwrap_or(0);
        l[i..].trim().to_owned()
    }

    /// The first stderr line starting with `prefix` (waits up to 30 s).
    #[track_caller]
    pub fn line_starting(&mut self, prefix: &str) -> String {
        self.line_where(&format!("starting with {prefix}"), |l| {
            l.starts_with(prefix)
        })
    }

    /// The next stderr line for which `wanted` holds, waiting up to 30 s for it;
    /// fails naming `what` with the stderr so far.
    #[track_caller]
    fn line_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        self.wait_for(Duration::from_secs(30), wanted)
            .unwrap_or_else(|| panic!("no line {what}; stderr so far:\n{}", self.seen.join("\n")))
    }

    /// The next stderr line for which `wanted` holds, within `limit`; `None`
    /// when the time runs out or stderr closes first.
    pub fn wait_for(&mut self, limit: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let l = self.lines.recv_timeout(left).ok()?;
            self.seen.push(l.clone());
            if wanted(&l) {
                return Some(l);
            }
        }
    }

    /// Waits for the exit: (exit code, -1 if killed by a signal; all of stderr;
    /// stdout).
    pub fn finish(mut self) -> (i32, String, String) {
        self.child.wait().unwrap();
        let (code, stderr, stdout) = self.collect();
        (code.unwrap_or(-1), stderr, stdout)
    }

    /// Waits for the exit at most `limit`: a run still going then is killed and
    /// fails the test, naming `what`. (exit code, `None` if a signal ended it;
    /// all of stderr; stdout.)
    #[track_caller]
    pub fn finish_within(mut self, what: &str, limit: Duration) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + limit;
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{what}: still running {}s after the signal",
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.collect()
    }

    /// After the exit: its code, the rest of stderr, stdout.
    fn collect(&mut self) -> (Option<i32>, String, String) {
        let code = self.child.wait().unwrap().code();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        let stdout = self.stdout.take().unwrap().join().unwrap();
        (code, self.seen.join("\n"), stdout)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
