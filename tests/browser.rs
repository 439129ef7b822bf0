//! The report in a real browser (headless Chromium): every figure decodes, no script fails, and a
//! screenshot of the top lands under artifacts/, and the page never scrolls sideways at a desktop or
//! a phone width. A page with a broken image and a failing script, and pages with a wide table out
//! of its scroll box or a long word, must fail the same check, so the check is known to see what
//! it looks for.
//!
//! Without Chromium the test says so and passes, unless REPRO_REQUIRE_BROWSER=1 (set by CI, which
//! installs Chromium first).

mod common;

use common::{Workspace, small_config};

fn chromium_or_skip() -> bool {
    if repro::report::browser::find_chromium().is_some() {
        return true;
    }
    assert!(
        std::env::var("REPRO_REQUIRE_BROWSER").is_err(),
        "REPRO_REQUIRE_BROWSER is set but no Chromium was found (apt-get install chromium, or set REPRO_CHROMIUM)"
    );
    eprintln!("SKIPPED: no Chromium on this machine (apt-get install chromium, or set REPRO_CHROMIUM)");
    false
}

fn poppler_or_skip() -> bool {
    if std::process::Command::new("pdftotext").arg("-v").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("REPRO_REQUIRE_BROWSER").is_err(),
        "REPRO_REQUIRE_BROWSER is set but poppler's pdftotext is missing (apt-get install poppler-utils)"
    );
    eprintln!("SKIPPED: the PDF check (no pdftotext: apt-get install poppler-utils)");
    false
}

#[test]
fn report_renders_in_chromium_with_every_figure_and_no_errors() {
    if !chromium_or_skip() {
        return;
    }
    let ws = Workspace::new("browser", &small_config(40));
    // This run prints the PDF too (the other tests turn it off).
    let run = ws.command(&["run"]).env_remove("REPRO_REPORT_PDF").output().unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success() && said.contains("report: artifacts/report.pdf"), "{said}");
    let out = ws.repro(&["check-report"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Two functions × (target, loss, predictions) figures.
    assert!(stdout.contains("at 1280 px: 6 images, all decoded; no script errors"), "{stdout}");
    assert!(stdout.contains("at 390 px: 6 images, all decoded; no script errors"), "{stdout}");
    assert!(stdout.contains("fits the window: 1280 px wide") && stdout.contains("fits the window: 390 px wide"));

    let png = std::fs::read(ws.path("artifacts/report-top.png")).expect("screenshot saved under artifacts/");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (width, height) =
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((width, height), (1280, 1600));
    // The screenshot is not a stage output: the artifacts still match their manifest.
    assert!(ws.repro(&["verify"]).status.success());

    // The PDF the run printed, read back with poppler: every page has text, the claims table is
    // there, and so are the figures; `check-report` says the same.
    if poppler_or_skip() {
        let pdf = repro::report::browser::check_pdf(&ws.path("artifacts/report.pdf")).expect("report.pdf printed");
        assert!(pdf.pages >= 3, "{pdf:?}");
        assert!(pdf.blank.is_empty(), "blank pages {:?}", pdf.blank);
        assert!(pdf.images >= 6, "the six figures are embedded: {pdf:?}");
        assert!(pdf.text.contains("Claims of the original report, checked"), "{}", pdf.text);
        assert!(pdf.text.contains("C1 ") && pdf.text.contains("C12 "), "every claim's row is printed");
        assert!(pdf.text.contains("page 1 of "), "page numbers in the footer");
        assert!(stdout.contains("report.pdf: ") && stdout.contains("no blank page"), "{stdout}");
    }

    // The same check on a damaged copy: one image that cannot decode, one script that throws.
    let html = std::fs::read_to_string(ws.path("artifacts/report.html")).unwrap();
    let damaged = html.replacen("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1).replacen(
        "</body>",
        "<script>thisFunctionDoesNotExist();</script></body>",
        1,
    );
    assert_ne!(damaged, html);
    std::fs::write(ws.path("damaged.html"), damaged).unwrap();
    let out = ws.repro(&["check-report", "--html", "damaged.html", "--screenshot", "damaged.png"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("6 images, 1 broken"), "{stdout}");
    assert!(stdout.contains("broken image: Target f1(x)"), "{stdout}");
    assert!(stdout.contains("script error: Uncaught ReferenceError: thisFunctionDoesNotExist"), "{stdout}");

    // A table taken out of its scroll box, wider than a desktop window: the page scrolls sideways.
    let columns: String = (0..60).map(|i| format!("<th>column_number_{i}</th>")).collect();
    let wide = html.replacen("</body>", &format!("<table id=\"wide\"><tr>{columns}</tr></table></body>"), 1);
    std::fs::write(ws.path("wide.html"), &wide).unwrap();
    let out = ws.repro(&["check-report", "--html", "wide.html", "--screenshot", "wide.png"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("in a 1280 px window") && stdout.contains("in a 390 px window"), "{stdout}");
    assert!(stdout.contains("<table#wide>"), "the culprit is named: {stdout}");
    // The same table in the report's scroll box fits.
    let boxed = html.replacen(
        "</body>",
        &format!("<div class=\"scroll\"><table id=\"wide\"><tr>{columns}</tr></table></div></body>"),
        1,
    );
    std::fs::write(ws.path("boxed.html"), &boxed).unwrap();
    let out = ws.repro(&["check-report", "--html", "boxed.html", "--screenshot", "boxed.png"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // One word longer than a phone is wide, in a bare block the report's CSS does not wrap: only
    // the phone width fails.
    let word = "0123456789".repeat(6);
    std::fs::write(ws.path("word.html"), html.replacen("</body>", &format!("<div id=\"word\">{word}</div></body>"), 1))
        .unwrap();
    let out = ws.repro(&["check-report", "--html", "word.html", "--screenshot", "word.png"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("fits the window: 1280 px wide"), "{stdout}");
    assert!(stdout.contains("in a 390 px window") && stdout.contains("<div#word>"), "{stdout}");
}
