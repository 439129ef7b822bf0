//! `report.md` (for reading on a forge, figures by relative link) and `report.html` (one
//! self-contained file: figures inline as data URIs, no scripts, no external resources).

pub mod browser;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::analysis::Table;
use crate::analysis::compare::{SEED, Stat};
use crate::analysis::{format_float, format_number as number};

/// Report input `name` of an experiment's section, or an error naming it.
pub fn input<'a>(inputs: &'a std::collections::BTreeMap<String, PathBuf>, name: &str) -> Result<&'a PathBuf> {
    inputs.get(name).ok_or_else(|| anyhow::anyhow!("report input {name} is missing"))
}

/// What the top of the report says about the run as a whole.
pub struct ReportHeader {
    pub commit: String,
    pub config_hash: String,
    /// Where the numeric stages computed: `flex on cpu`, or several such.
    pub compute: String,
    /// Stages behind the report, and the wall time of the runs that produced them, summed.
    pub stages: usize,
    pub compute_seconds: f64,
}

enum Block {
    Text(String),
    Figure { caption: String, link: String, png: PathBuf, provenance: Option<String> },
    Table { caption: String, header: Vec<String>, rows: Vec<Vec<Toned>>, folded: bool },
    Code(String),
}

/// How the HTML report colours a cell. The report knows tones; what earns one (a verdict) is
/// decided where the cell is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Muted,
}

/// A table cell: its text, and a tone where it carries one.
#[derive(Clone, Debug, PartialEq)]
pub struct Toned {
    pub text: String,
    pub tone: Option<Tone>,
}

impl Toned {
    pub fn new(text: impl Into<String>, tone: Option<Tone>) -> Toned {
        Toned { text: text.into(), tone }
    }
}

impl From<String> for Toned {
    fn from(text: String) -> Toned {
        Toned { text, tone: None }
    }
}

/// Tables longer than this fold away by default.
pub const FOLD_ROWS: usize = 20;

/// One part of the report (an experiment, the claims, the provenance).
pub struct Section {
    pub id: String,
    pub title: String,
    blocks: Vec<Block>,
}

impl Section {
    pub fn new(id: &str, title: &str) -> Section {
        Section { id: id.to_string(), title: title.to_string(), blocks: Vec::new() }
    }

    pub fn text(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Text(text.into()));
    }

    /// `link` is the figure's path under `artifacts/`; `png` the file to embed.
    pub fn figure(&mut self, caption: impl Into<String>, link: impl Into<String>, png: &Path) {
        self.blocks.push(Block::Figure {
            caption: caption.into(),
            link: link.into(),
            png: png.to_path_buf(),
            provenance: None,
        });
    }

    /// A table; one longer than [`FOLD_ROWS`] folds away under a summary of its numeric columns
    /// (mean, sd, extremes), so a 100-run listing does not bury the section.
    pub fn table(&mut self, caption: impl Into<String>, table: &Table) -> Result<()> {
        let caption = caption.into();
        let n = table.height();
        if n <= FOLD_ROWS {
            self.rows(caption, table.column_names(), table.display_rows()?, false);
            return Ok(());
        }
        let mut summary = Vec::new();
        for name in table.column_names().into_iter().filter(|c| c != SEED) {
            if let Some(s) = Stat::of(&table.floats(&name)?) {
                summary.push(vec![name, number(s.mean), format_float(s.sd), number(s.min), number(s.max)]);
            }
        }
        let header = ["column", "mean", "sd", "min", "max"].map(String::from).to_vec();
        self.rows(format!("{caption}: summary of {n} rows"), header, summary, false);
        self.rows(format!("{caption} (all {n} rows)"), table.column_names(), table.display_rows()?, true);
        Ok(())
    }

    /// A table of preformatted cells; `folded` ones open on request (long listings).
    pub fn rows<C: Into<Toned>>(
        &mut self,
        caption: impl Into<String>,
        header: Vec<String>,
        rows: Vec<Vec<C>>,
        folded: bool,
    ) {
        let rows = rows.into_iter().map(|row| row.into_iter().map(Into::into).collect()).collect();
        self.blocks.push(Block::Table { caption: caption.into(), header, rows, folded });
    }

    /// "Ours beside the original": (quantity, the original's value, ours), as text.
    pub fn beside(&mut self, caption: impl Into<String>, rows: Vec<[String; 3]>) {
        let header = ["quantity", "original", "ours"].map(String::from).to_vec();
        self.rows(caption, header, rows.into_iter().map(Vec::from).collect(), false);
    }

    /// A preformatted block (a configuration file).
    pub fn code(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Code(text.into()));
    }

    /// Sets each figure's provenance line from the file it embeds.
    pub fn annotate_figures(&mut self, describe: impl Fn(&Path) -> Option<String>) {
        for block in &mut self.blocks {
            if let Block::Figure { png, provenance, .. } = block {
                *provenance = describe(png);
            }
        }
    }

    /// The embedded figure files, in order.
    pub fn figures(&self) -> Vec<&Path> {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                Block::Figure { png, .. } => Some(png.as_path()),
                _ => None,
            })
            .collect()
    }
}

pub fn write(header: &ReportHeader, sections: &[Section], md: &Path, html: &Path) -> Result<()> {
    std::fs::write(md, markdown(header, sections))?;
    std::fs::write(html, to_html(header, sections)?)?;
    Ok(())
}

const TITLE: &str = "Deep vs shallow, optimisation and generalisation: a reproduction";

fn intro(header: &ReportHeader) -> String {
    format!(
        "Regenerated by `repro` at commit `{}` from pipeline.toml (effective configuration blake3 `{}`), computed with \
         {}: {} stages, {} of compute (the wall time of the runs that produced them). Every number below is \
         computed from the tables in this folder; the original's reference numbers come from the study's own \
         printouts and figures. `manifest.json` lists every artifact with its blake3.",
        header.commit,
        header.config_hash,
        header.compute,
        header.stages,
        duration(header.compute_seconds)
    )
}

/// "lo to hi" of `values` (4 significant digits), or "lo" when they are all equal.
pub fn span(values: &[f64]) -> String {
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    if lo == hi { number(lo) } else { format!("{} to {}", number(lo), number(hi)) }
}

/// A wall time for people: seconds below two minutes, then minutes, then hours.
pub fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else if seconds < 7200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}

fn markdown(header: &ReportHeader, sections: &[Section]) -> String {
    let mut out = format!("# {TITLE}\n\n{}\n\n## Contents\n\n", intro(header));
    for s in sections {
        let _ = writeln!(out, "- [{}](#{})", s.title, s.id);
    }
    for s in sections {
        let _ = write!(out, "\n<a id=\"{}\"></a>\n\n## {}\n\n", s.id, s.title);
        for block in &s.blocks {
            match block {
                Block::Text(t) => {
                    let _ = write!(out, "{t}\n\n");
                }
                Block::Figure { caption, link, provenance, .. } => {
                    let _ = write!(out, "![{caption}]({link})\n\n*{caption}*");
                    if let Some(p) = provenance {
                        let _ = write!(out, " <br><sub>{p}</sub>");
                    }
                    out.push_str("\n\n");
                }
                Block::Table { caption, header, rows, folded } => {
                    if *folded {
                        let _ = write!(out, "<details><summary>{caption}</summary>\n\n");
                    } else {
                        let _ = write!(out, "**{caption}**\n\n");
                    }
                    let cell = |c: &str| c.replace('|', "\\|");
                    let _ = write!(
                        out,
                        "| {} |\n|{}|\n",
                        header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | "),
                        vec!["---"; header.len()].join("|")
                    );
                    for row in rows {
                        let _ =
                            writeln!(out, "| {} |", row.iter().map(|c| cell(&c.text)).collect::<Vec<_>>().join(" | "));
                    }
                    out.push_str(if *folded { "\n</details>\n\n" } else { "\n" });
                }
                Block::Code(text) => {
                    let _ = write!(out, "```toml\n{}\n```\n\n", text.trim_end());
                }
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Escaped text with `code` spans, as in the Markdown.
fn inline(s: &str) -> String {
    escape(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { format!("<code>{part}</code>") } else { part.to_string() })
        .collect()
}

/// A toned cell's class (see `CSS`).
fn cell_class(cell: &Toned) -> &'static str {
    match cell.tone {
        Some(Tone::Good) => " class=\"yes\"",
        Some(Tone::Bad) => " class=\"no\"",
        Some(Tone::Muted) => " class=\"na\"",
        None => "",
    }
}

fn to_html(header: &ReportHeader, sections: &[Section]) -> Result<String> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{TITLE}</title>\n<style>{CSS}{}</style></head><body>\n<h1>{TITLE}</h1>\n<p class=\"intro\">{}</p>\n<nav><h2>Contents</h2><ol>\n",
        print_css(header),
        inline(&intro(header))
    );
    for s in sections {
        let _ = writeln!(out, "<li><a href=\"#{}\">{}</a></li>", s.id, escape(&s.title));
    }
    out.push_str("</ol></nav>\n");
    for s in sections {
        let _ = writeln!(out, "<section id=\"{}\"><h2>{}</h2>", s.id, escape(&s.title));
        for block in &s.blocks {
            match block {
                Block::Text(t) => {
                    let _ = writeln!(out, "<p>{}</p>", inline(t));
                }
                Block::Figure { caption, png, provenance, .. } => {
                    let bytes = std::fs::read(png).with_context(|| format!("cannot read figure {}", png.display()))?;
                    let _ = write!(
                        out,
                        "<figure><img alt=\"{0}\" src=\"data:image/png;base64,{1}\"><figcaption>{0}",
                        escape(caption),
                        base64(&bytes)
                    );
                    if let Some(p) = provenance {
                        let _ = write!(out, "<br><small>{}</small>", inline(p));
                    }
                    out.push_str("</figcaption></figure>\n");
                }
                Block::Table { caption, header, rows, folded } => {
                    if *folded {
                        let _ = write!(out, "<details><summary>{}</summary>", inline(caption));
                        out.push_str("<div class=\"scroll\"><table><thead><tr>");
                    } else {
                        let _ = write!(
                            out,
                            "<div class=\"scroll\"><table><caption>{}</caption><thead><tr>",
                            inline(caption)
                        );
                    }
                    for h in header {
                        let _ = write!(out, "<th>{}</th>", escape(h));
                    }
                    out.push_str("</tr></thead><tbody>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        for cell in row {
                            let _ = write!(out, "<td{}>{}</td>", cell_class(cell), inline(&cell.text));
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str(if *folded {
                        "</tbody></table></div></details>\n"
                    } else {
                        "</tbody></table></div>\n"
                    });
                }
                Block::Code(text) => {
                    let _ = writeln!(out, "<pre>{}</pre>", escape(text.trim_end()));
                }
            }
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

// The page never scrolls sideways (checked by `repro check-report` at a desktop and a phone
// width): a table wider than the page scrolls inside its own box, and long words (hashes, paths)
// break rather than push the page wider.
const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}\
h1{font-size:1.7em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}.intro{color:#333}\
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}figcaption small{color:#777;overflow-wrap:anywhere}\
table{border-collapse:collapse;margin:1em 0;font-size:.85em}caption{text-align:left;font-weight:600;padding:.3em 0}\
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right;vertical-align:top}th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}\
td.yes{background:#e3f4e1;font-weight:600}td.no{background:#fbe3e1;font-weight:600}td.na{background:#f1f1f1}\
#claims td,#claims th{text-align:left}details{margin:1em 0}summary{cursor:pointer;font-weight:600}code{font-size:.92em;background:#f5f5f5;padding:0 .2em}\
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}nav ol{columns:2}\
.scroll{overflow-x:auto;max-width:100%}p,li,summary,figcaption{overflow-wrap:break-word}";

/// How the report prints (`artifacts/report.pdf` is printed from it by headless Chromium): A4,
/// each section from a new page, figures, table rows and captions never split, wide tables at a
/// smaller size instead of a scroll box, and in every page's footer the provenance line (commit
/// and configuration hash) and the page number.
fn print_css(header: &ReportHeader) -> String {
    let quoted = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect::<String>();
    let provenance = format!(
        "repro {} \\B7  configuration blake3 {}",
        quoted(&header.commit),
        quoted(&header.config_hash).chars().take(16).collect::<String>()
    );
    format!(
        "@page{{size:A4;margin:14mm 12mm 16mm;@bottom-left{{content:\"{provenance}\";font-size:7.5pt;color:#666}}\
         @bottom-right{{content:\"page \" counter(page) \" of \" counter(pages);font-size:7.5pt;color:#666}}}}\
         @media print{{body{{max-width:none;margin:0;padding:0;font-size:10pt}}section{{break-before:page}}\
         figure,img,tr,caption,pre,h2,h3{{break-inside:avoid}}h2,h3{{break-after:avoid}}thead{{display:table-header-group}}\
         .scroll{{overflow:visible}}table{{font-size:.72em}}nav ol{{columns:1}}}}"
    )
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_table_folds_under_a_summary() {
        use crate::analysis::Cell;
        let rows = |n: i64| {
            Table::from_rows(
                &["seed", "loss", "model"],
                (0..n).map(|k| vec![Cell::Int(k), (k as f64).into(), "m".into()]),
            )
            .unwrap()
        };
        let mut s = Section::new("x", "x");
        s.table("Every run", &rows(25)).unwrap();
        s.table("Few runs", &rows(3)).unwrap();
        let folded: Vec<(&String, usize, bool)> = s
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Table { caption, rows, folded, .. } => Some((caption, rows.len(), *folded)),
                _ => None,
            })
            .collect();
        assert_eq!(folded.iter().map(|(_, n, f)| (*n, *f)).collect::<Vec<_>>(), [(1, false), (25, true), (3, false)]);
        assert_eq!(folded[0].0, "Every run: summary of 25 rows");
        // loss 0..24: mean 12, extremes 0 and 24; seed and the text column are not summarised.
        let Block::Table { rows: summary, .. } = &s.blocks[0] else { panic!() };
        let texts: Vec<&str> = summary[0].iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["loss", "12", "7.360", "0", "24"]);
    }

    #[test]
    fn a_cells_colour_comes_from_its_tone_never_from_its_text() {
        let mut s = Section::new("x", "x");
        let rows = vec![vec![Toned::new("confirmed", None), Toned::new("holds", Some(Tone::Good))]];
        s.rows("Verdicts", vec!["a".into(), "b".into()], rows, false);
        let Block::Table { rows, .. } = &s.blocks[0] else { panic!() };
        let classes: Vec<&str> = rows[0].iter().map(cell_class).collect();
        assert_eq!(classes, ["", " class=\"yes\""]);
        assert_eq!(cell_class(&Toned::new("", Some(Tone::Bad))), " class=\"no\"");
        assert_eq!(cell_class(&Toned::new("", Some(Tone::Muted))), " class=\"na\"");
    }

    #[test]
    fn spans_print_counts_as_integers() {
        assert_eq!(span(&[69.0, 555.0]), "69 to 555");
        assert_eq!(span(&[0.5, 0.5]), "0.5000");
        assert_eq!(span(&[0.01037, 0.0164]), "0.01037 to 0.01640");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
