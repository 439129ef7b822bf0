//! The report in a real browser: headless Chromium loads `report.html` at a desktop and a phone
//! width, and the check fails on any image that does not decode, any script error, or a page wider
//! than the window (a sideways scroll bar); a screenshot shows the top of the report.
//!
//! The check loads an instrumented copy (a probe script first in `<head>`, so it sees every error
//! of what follows) and reads the probe's verdict from the DOM Chromium dumps after the load event.
//! The copy loads in an iframe of the width under test: headless Chromium will not make a window
//! narrower than 500 px, and an iframe is a true viewport (its media queries and layout width).

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
    /// The window's width and the document's (wider: the page scrolls sideways).
    pub window_width: u32,
    pub document_width: u32,
    /// The outermost elements that reach past the window's right edge: tag, class or id, and
    /// the start of their text.
    pub too_wide: Vec<String>,
}

impl PageCheck {
    pub fn ok(&self) -> bool {
        self.broken.is_empty() && self.errors.is_empty() && !self.scrolls_sideways()
    }

    pub fn scrolls_sideways(&self) -> bool {
        self.document_width > self.window_width
    }
}

/// The widths the report must fit without scrolling sideways: a desktop window and a phone.
pub const WINDOW_WIDTHS: [u32; 2] = [1280, 390];

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
  var window_width = document.documentElement.clientWidth;
  var too_wide = [];
  var reaches = function (el) { return el.getBoundingClientRect().right > window_width + 0.5; };
  // Its own box reaches past the edge, or its text does (a long word overflows a box that fits).
  var culprit = function (el) {
    if (reaches(el)) { return true; }
    if (el.scrollWidth <= el.clientWidth + 1 || el.getBoundingClientRect().left + el.scrollWidth <= window_width + 0.5) { return false; }
    for (var c = 0; c < el.children.length; c++) { if (reaches(el.children[c])) { return false; } }
    return true;
  };
  var all = document.body.getElementsByTagName('*');
  for (var j = 0; j < all.length && too_wide.length < 5; j++) {
    var el = all[j];
    if (!culprit(el)) { continue; }
    // Only the outermost, and not what scrolls inside its own box: an element inside one already
    // named overflows with it, and one inside a scroll box moves the box's bar, not the page's.
    var skip = false;
    for (var p = el.parentElement; p && p !== document.body && !skip; p = p.parentElement) {
      skip = p.__reproNamed === true || getComputedStyle(p).overflowX !== 'visible';
    }
    if (skip) { continue; }
    el.__reproNamed = true;
    too_wide.push('<' + el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className ? '.' + el.className : '')
      + '> ' + Math.round(el.getBoundingClientRect().left + Math.max(el.scrollWidth, el.getBoundingClientRect().width)) + ' px: '
      + (el.textContent || el.alt || '').trim().slice(0, 60));
  }
  var out = parent.document.createElement('pre');
  out.id = 'repro-browser-check';
  out.textContent = JSON.stringify({ images: document.images.length, broken: broken, errors: __reproErrors,
    window_width: window_width, document_width: document.documentElement.scrollWidth, too_wide: too_wide });
  parent.document.body.appendChild(out);
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

/// Loads `html` in headless Chromium in a window `width` px wide and reports broken images,
/// script errors and whether the page is wider than the window.
pub fn check(chromium: &Path, html: &Path, width: u32) -> Result<PageCheck> {
    let page = std::fs::read_to_string(html).with_context(|| format!("cannot read {}", html.display()))?;
    let Some(head) = page.find("<head>") else {
        bail!("{} has no <head>", html.display());
    };
    let at = head + "<head>".len();
    let scratch = tempdir("check")?;
    let scratch = scratch.path();
    // The report is self-contained, so the copy loads from anywhere.
    let probed = format!("{}{PROBE}{}", &page[..at], &page[at..]);
    let probe_page = scratch.join("probed-report.html");
    std::fs::write(
        &probe_page,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\"><iframe style=\"border:0;width:{width}px;height:900px\" srcdoc=\"{}\"></iframe></body></html>",
            probed.replace('&', "&amp;").replace('"', "&quot;")
        ),
    )?;
    let dom = run(
        headless(chromium, scratch)
            .arg(format!("--window-size={},900", width.max(1280)))
            .args(["--virtual-time-budget=15000", "--dump-dom"])
            .arg(file_url(&probe_page)?),
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

/// Prints `html` to `pdf` as Chromium prints it (the page's print styles: A4, sections from a new
/// page, the provenance and page numbers in the footer; no browser header or footer). Written
/// beside the target and renamed into place, so a reader never sees half a file.
pub fn print_pdf(chromium: &Path, html: &Path, pdf: &Path) -> Result<()> {
    let scratch = tempdir("pdf")?;
    let dir = pdf.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let partial = std::env::current_dir()?.join(dir).join(".report.pdf.partial");
    let result = run(
        headless(chromium, scratch.path())
            .args(["--no-pdf-header-footer", "--virtual-time-budget=15000"])
            .arg(format!("--print-to-pdf={}", partial.display()))
            .arg(file_url(html)?),
        "PDF",
    );
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    if !partial.is_file() {
        bail!("Chromium wrote no PDF for {}", html.display());
    }
    std::fs::rename(&partial, pdf).with_context(|| format!("cannot write {}", pdf.display()))
}

/// What a PDF holds, as poppler's tools read it.
#[derive(Debug)]
pub struct PdfCheck {
    pub pages: usize,
    /// Pages with no text (1-based).
    pub blank: Vec<usize>,
    pub images: usize,
    /// The text of every page, in order.
    pub text: String,
}

impl PdfCheck {
    pub fn ok(&self) -> bool {
        self.pages > 0 && self.blank.is_empty() && self.images > 0
    }
}

/// Opens `pdf` with poppler's `pdfinfo`, `pdftotext` and `pdfimages` (Debian's poppler-utils):
/// its pages, the text of each, and its embedded images. An error when the tools are missing.
pub fn check_pdf(pdf: &Path) -> Result<PdfCheck> {
    let tool = |name: &str, args: &[&str]| -> Result<String> {
        let out = Command::new(name)
            .args(args)
            .arg(pdf)
            .args(if name == "pdftotext" { &["-"][..] } else { &[][..] })
            .output()
            .with_context(|| format!("cannot run {name} (apt-get install poppler-utils)"))?;
        if !out.status.success() {
            bail!("{name} cannot read {}: {}", pdf.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    };
    let info = tool("pdfinfo", &[])?;
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .context("pdfinfo gives no page count")?;
    let text = tool("pdftotext", &["-layout"])?;
    // pdftotext ends every page with a form feed.
    let blank =
        text.split('\u{c}').take(pages).enumerate().filter(|(_, p)| p.trim().is_empty()).map(|(i, _)| i + 1).collect();
    // `pdfimages -list`: two header lines, then one line per image.
    let images = tool("pdfimages", &["-list"])?.lines().skip(2).filter(|l| !l.trim().is_empty()).count();
    Ok(PdfCheck { pages, blank, images, text })
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
