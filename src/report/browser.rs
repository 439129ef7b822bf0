//! The report in a real browser: headless Chromium loads `report.html`, and the check fails on any
//! image that does not decode or any script error; a screenshot shows the top of the report.
//!
//! The check loads an instrumented copy (a probe script first in `<head>`, so it sees every error
//! of what follows) and reads the probe's verdict from the DOM Chromium dumps after the load event.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// What the probe saw.
#[derive(Debug, Deserialize)]
pub struct PageCheck {
    pub images: usize,
    /// Alt text (or the start of the source) of every image that failed to decode.
    pub broken: Vec<String>,
    /// Script errors and failed resource loads, as the page reported them.
    pub errors: Vec<String>,
}

impl PageCheck {
    pub fn ok(&self) -> bool {
        self.broken.is_empty() && self.errors.is_empty()
    }
}

const PROBE_ID: &str = "repro-browser-check";

const PROBE: &str = r#"<script>
window.__reproErrors = [];
addEventListener('error', function (e) {
  var t = e.target;
  if (t && t.tagName) { __reproErrors.push('resource failed to load: <' + t.tagName.toLowerCase() + '> ' + (t.alt || t.src || '').slice(0, 80)); }
  else { __reproErrors.push('script error: ' + e.message); }
}, true);
addEventListener('unhandledrejection', function (e) { __reproErrors.push('unhandled promise rejection: ' + e.reason); });
addEventListener('load', function () {
  var broken = [];
  for (var i = 0; i < document.images.length; i++) {
    var img = document.images[i];
    if (!img.complete || img.naturalWidth === 0) { broken.push(img.alt || img.src.slice(0, 60)); }
  }
  var out = document.createElement('pre');
  out.id = 'repro-browser-check';
  out.textContent = JSON.stringify({ images: document.images.length, broken: broken, errors: __reproErrors });
  document.body.appendChild(out);
});
</script>"#;

/// Chromium: `$REPRO_CHROMIUM`, else the first of the usual names on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("REPRO_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    let dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    names.iter().flat_map(|name| dirs.iter().map(move |d| d.join(name))).find(|p| p.is_file())
}

/// A headless Chromium with a throwaway profile, no network chatter, no sandbox (CI runs as root).
fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

fn file_url(path: &Path) -> Result<String> {
    let abs = std::fs::canonicalize(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(format!("file://{}", abs.display()))
}

fn run(cmd: &mut Command, what: &str) -> Result<Vec<u8>> {
    let out = cmd.output().with_context(|| format!("cannot start Chromium for the {what}"))?;
    if !out.status.success() {
        bail!(
            "Chromium failed ({what}): {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no output")
        );
    }
    Ok(out.stdout)
}

/// Loads `html` in headless Chromium and reports broken images and script errors.
pub fn check(chromium: &Path, html: &Path) -> Result<PageCheck> {
    let page = std::fs::read_to_string(html).with_context(|| format!("cannot read {}", html.display()))?;
    let Some(head) = page.find("<head>") else {
        bail!("{} has no <head>", html.display());
    };
    let at = head + "<head>".len();
    let scratch = tempdir("check")?;
    let scratch = scratch.path();
    // The report is self-contained, so the copy loads from anywhere.
    let probe_page = scratch.join("probed-report.html");
    std::fs::write(&probe_page, format!("{}{PROBE}{}", &page[..at], &page[at..]))?;
    let dom = run(
        headless(chromium, scratch).args(["--virtual-time-budget=15000", "--dump-dom"]).arg(file_url(&probe_page)?),
        "check",
    );
    let dom = String::from_utf8_lossy(&dom?).to_string();
    let start = format!("<pre id=\"{PROBE_ID}\">");
    let Some(from) = dom.find(&start) else {
        bail!("the page never finished loading in Chromium (no probe result in the DOM)");
    };
    let rest = &dom[from + start.len()..];
    let json = unescape(&rest[..rest.find("</pre>").context("unterminated probe result")?]);
    serde_json::from_str(&json).with_context(|| format!("unreadable probe result: {json}"))
}

/// Saves a `width`×`height` screenshot of the top of `html` as PNG.
pub fn screenshot(chromium: &Path, html: &Path, png: &Path, (width, height): (u32, u32)) -> Result<()> {
    let scratch = tempdir("shot")?;
    let png_abs = std::env::current_dir()?.join(png);
    let result = run(
        headless(chromium, scratch.path())
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--screenshot={}", png_abs.display()))
            .arg(file_url(html)?),
        "screenshot",
    );
    result?;
    if !png_abs.is_file() {
        bail!("Chromium wrote no screenshot to {}", png.display());
    }
    Ok(())
}

/// A fresh Chromium profile directory, removed when dropped.
fn tempdir(what: &str) -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix(&format!("repro-chromium-{what}-")).tempdir()?)
}

/// Undoes the escaping of text content in serialised HTML.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_reverses_text_escaping() {
        assert_eq!(unescape("a &amp;lt; &lt;b&gt; &quot;c&quot;"), "a &lt; <b> \"c\"");
    }
}
