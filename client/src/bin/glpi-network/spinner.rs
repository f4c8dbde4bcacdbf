//! A progress line on stderr while waiting on the network longer than a moment, drawn only
//! when stderr is a terminal, and wiped when the wait ends.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a wait stays silent before the spinner appears.
const QUIET: Duration = Duration::from_millis(300);
const FRAME: Duration = Duration::from_millis(100);
const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Stops and wipes the spinner when dropped.
pub struct Spinner {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts waiting; the line appears after [`QUIET`] if the wait lasts.
    pub fn start(message: String) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner {
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if rx.recv_timeout(QUIET) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let mut err = std::io::stderr();
            let mut i = 0;
            loop {
                let _ = write!(err, "\r{} {message}…", FRAMES[i % FRAMES.len()]);
                let _ = err.flush();
                i += 1;
                if rx.recv_timeout(FRAME) != Err(RecvTimeoutError::Timeout) {
                    let _ = write!(err, "\r\x1b[2K");
                    let _ = err.flush();
                    return;
                }
            }
        });
        Spinner {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
