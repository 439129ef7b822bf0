//! Progress display: a bar per running stage on a terminal, one line per finished stage otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Owned by the scheduler; hands out one [`Progress`] per running stage.
pub struct Reporter {
    multi: Option<MultiProgress>,
}

impl Reporter {
    /// Bars only when stderr is a terminal and `CI` is not set.
    pub fn new() -> Reporter {
        Reporter {
            multi: interactive().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8))),
        }
    }

    pub fn start(&self, stage: &str) -> Progress {
        let Some(multi) = &self.multi else {
            return Progress::hidden();
        };
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:25}] {pos}/{len} {msg} (eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(stage.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar: Some(bar) }
    }

    /// A line that does not tear the bars.
    pub fn line(&self, text: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Self::new()
    }
}

/// A running stage's handle: set the total once, then the position (epoch, batch) and a message.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Cheap when hidden: the message is only built when a bar is shown.
    pub fn update(&self, position: u64, message: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.set_message(message());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bars are drawn only when stderr is a terminal and `CI` is not set.
fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A bar for transferring `len` objects to or from a remote (hidden where stage bars are).
pub fn transfer_bar(direction: &str, len: u64) -> ProgressBar {
    if !interactive() || len == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(8));
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} objects ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(direction.to_string());
    bar
}
