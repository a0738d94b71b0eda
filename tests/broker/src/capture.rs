//! Loopback packet capture with tshark, filtered on one TCP port.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::mosquitto::{find_tool, shared_tempdir};

/// A running capture of `tcp port N` on the loopback interface.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    dir: tempfile::TempDir,
}

impl Capture {
    /// Starts capturing; `Err(reason)` if tshark is missing or capturing is not permitted.
    pub fn start(port: u16) -> Result<Capture, String> {
        let tshark = find_tool("tshark").ok_or("tshark is not installed")?;
        let dir = shared_tempdir().map_err(|e| e.to_string())?;
        let file = dir.path().join("capture.pcap");
        let mut child = Command::new(tshark)
            .args([
                "-i",
                "lo",
                "-f",
                &format!("tcp port {port}"),
                "-F",
                "pcap",
                "-w",
            ])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run tshark: {e}"))?;
        // tshark says "Capturing on 'Loopback: lo'" once the capture runs, or explains why not.
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let mut first = Vec::new();
            // "Capturing on 'lo'" comes first; dumpcap's "Capture started" once packets flow.
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if line.contains("Capture started") || line.contains("File:") {
                    let _ = tx.send(Ok(()));
                    break;
                }
                first.push(line);
            }
            let _ = tx.send(Err(first.join("\n")));
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(())) => Ok(Capture { child, dir }),
            Ok(Err(why)) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("capture not permitted or failed: {why}"))
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err("tshark did not start capturing".into())
            }
        }
    }

    /// Stops the capture (SIGINT, so tshark flushes its file) and returns the raw pcap bytes.
    pub fn finish(mut self) -> io::Result<Vec<u8>> {
        // Let dumpcap write out what it has buffered (not a timing assertion).
        std::thread::sleep(Duration::from_millis(500));
        let pid = self.child.id().to_string();
        let stopped = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        self.child.wait()?;
        std::fs::read(self.dir.path().join("capture.pcap"))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
