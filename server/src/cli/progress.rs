//! Progress on stderr for long work (backup, restore, bulk issue), drawn only when stderr is a
//! terminal: nothing at all on a pipe or in a file.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar counting `len` items (`done/len what`).
pub fn count(len: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "[{{elapsed_precise}}] [{{bar:30}}] {{pos}}/{{len}} {what} ({{eta}} left)"
    )) {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar
}

/// A bar counting `len` bytes.
pub fn bytes(len: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} [{{bar:30}}] {{bytes}}/{{total_bytes}} ({{bytes_per_sec}})"
    )) {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar
}

/// A spinner for work of unknown length.
pub fn spinner(what: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target());
    bar.set_message(what);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
