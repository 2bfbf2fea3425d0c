//! `davit serve` as a process, for the tests of the binary: started on port 0, its URL read
//! from the first stdout line, killed if a test fails before stopping it.
#![allow(dead_code)] // each test binary uses part of it

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) struct Served {
    child: Option<Child>,
    /// The URL printed on the first line, without its trailing `/`.
    pub(crate) base: String,
}

impl Served {
    /// `davit serve ARGS` logging at `log` (`DAVIT_LOG`); stderr is captured for
    /// [`Served::stop`] when `capture_log`, else passed through.
    pub(crate) fn start<S: AsRef<OsStr>>(args: &[S], log: &str, capture_log: bool) -> Self {
        Self::start_through(&[], args, log, capture_log)
    }

    /// As [`Served::start`], with `davit` run by the command `wrapper` (which must exec it).
    pub(crate) fn start_through<S: AsRef<OsStr>>(
        wrapper: &[&str],
        args: &[S],
        log: &str,
        capture_log: bool,
    ) -> Self {
        let bin = env!("CARGO_BIN_EXE_davit");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .arg("serve")
            .args(args)
            .env("DAVIT_LOG", log)
            .stdout(Stdio::piped())
            .stderr(if capture_log {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("davit starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        assert!(!base.ends_with(":0"), "the bound port is printed, not 0");
        Served {
            child: Some(child),
            base,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the server is running")
    }

    /// SIGKILL: no chance to finish anything.
    pub(crate) fn kill(mut self) {
        let child = self.child();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM; asserts a clean exit within 5 s and returns what it logged (when captured).
    pub(crate) fn stop(mut self) -> String {
        let mut child = self.child.take().expect("the server is running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..100 {
            if let Some(exit) = child.try_wait().unwrap() {
                let mut log = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    stderr.read_to_string(&mut log).unwrap();
                }
                assert!(exit.success(), "davit exited with {exit}: {log}");
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("davit did not stop on SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One request (with `Depth: 0`) on its own runtime: the status and the body.
pub(crate) fn request(method: &str, url: &str, body: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The workspace builds reqwest without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .header("Depth", "0")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}
