//! One look for every figure: line charts with optional min-max bands, scatter plots, log axes.
//! Each chart is written twice, as `<stem>.png` (for the HTML report) and `<stem>.svg`.

pub mod grad_norm;
pub mod interpolation;
pub mod min_ratio;
pub mod mnist_cnn;
pub mod params_generalization;
pub mod random_labels;
pub mod sensitivity;
pub mod sim_functions;
pub mod weights_pca;

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// Tableau 10: distinguishable, and readable in grey scale.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// A colour index that draws in black (ground truth, references).
pub const BLACK: usize = usize::MAX;

/// Where a chart's legend goes.
pub type LegendPosition = SeriesLabelPosition;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 560;
const FONT: &str = "DejaVu Sans";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn color(index: usize) -> RGBColor {
    if index == BLACK { RGBColor(0, 0, 0) } else { PALETTE[index % PALETTE.len()] }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mark {
    Line,
    Dashed,
    Points,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub color: usize,
    pub mark: Mark,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// (low, high) per point, drawn as a translucent band.
    pub band: Option<(Vec<f64>, Vec<f64>)>,
    /// Text drawn beside some points: (point index, text).
    pub notes: Vec<(usize, String)>,
    /// Also mark each point (a line with markers).
    pub markers: bool,
}

impl Series {
    pub fn line(label: impl Into<String>, color: usize, x: Vec<f64>, y: Vec<f64>) -> Series {
        Series { label: label.into(), color, mark: Mark::Line, x, y, band: None, notes: Vec::new(), markers: false }
    }

    pub fn points(label: impl Into<String>, color: usize, x: Vec<f64>, y: Vec<f64>) -> Series {
        Series { mark: Mark::Points, ..Series::line(label, color, x, y) }
    }

    /// A mean line with a min-max band (the band is omitted where it has no width).
    pub fn band(
        label: impl Into<String>,
        color: usize,
        x: Vec<f64>,
        mean: Vec<f64>,
        low: Vec<f64>,
        high: Vec<f64>,
    ) -> Series {
        let flat = low.iter().zip(&high).all(|(l, h)| l == h);
        Series { band: (!flat).then_some((low, high)), ..Series::line(label, color, x, mean) }
    }

    /// Writes `text` beside point `index`.
    pub fn note(mut self, index: usize, text: impl Into<String>) -> Series {
        self.notes.push((index, text.into()));
        self
    }

    pub fn with_markers(mut self) -> Series {
        self.markers = true;
        self
    }

    pub fn dashed(mut self) -> Series {
        self.mark = Mark::Dashed;
        self
    }

    /// Keeps at most about `max_points` points (evenly spaced, always the last), so that figures
    /// of 20000-epoch curves stay small; the band keeps its extremes within each stride.
    pub fn thin(mut self, max_points: usize) -> Series {
        let n = self.x.len();
        if n <= max_points {
            return self;
        }
        let stride = n.div_ceil(max_points);
        let picks: Vec<usize> = (0..n).step_by(stride).chain(std::iter::once(n - 1)).collect();
        let pick = |v: &Vec<f64>| picks.iter().map(|&i| v[i]).collect::<Vec<_>>();
        if let Some((low, high)) = &self.band {
            let window = |i: usize| i..(i + stride).min(n);
            let lo = picks.iter().map(|&i| low[window(i)].iter().cloned().fold(f64::INFINITY, f64::min)).collect();
            let hi = picks.iter().map(|&i| high[window(i)].iter().cloned().fold(f64::NEG_INFINITY, f64::max)).collect();
            self.band = Some((lo, hi));
        }
        self.x = pick(&self.x);
        self.y = pick(&self.y);
        self
    }
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub legend: SeriesLabelPosition,
    pub series: Vec<Series>,
}

impl Chart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Chart {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            legend: SeriesLabelPosition::UpperRight,
            series: Vec::new(),
        }
    }

    pub fn log_y(mut self) -> Chart {
        self.log_y = true;
        self
    }

    /// Where the legend goes (default upper right), for curves that end up there.
    pub fn legend_at(mut self, position: SeriesLabelPosition) -> Chart {
        self.legend = position;
        self
    }

    pub fn log_x(mut self) -> Chart {
        self.log_x = true;
        self
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
            .map_err(|_| ())
            .expect("bundled font is valid");
    });
}

/// Writes `<stem>.png` and `<stem>.svg`.
pub fn render(chart: &Chart, stem: &Path) -> Result<()> {
    render_stack(std::slice::from_ref(chart), stem, HEIGHT)
}

/// Writes several charts stacked vertically in one figure, for quantities that share an x axis.
pub fn render_panels(charts: &[Chart], stem: &Path) -> Result<()> {
    render_stack(charts, stem, HEIGHT * 2 / 3 * charts.len() as u32)
}

fn render_stack(charts: &[Chart], stem: &Path, height: u32) -> Result<()> {
    register_font();
    // Appended, not `with_extension`: stems such as `interpolation_lr0.001` contain dots.
    let with = |ext: &str| std::path::PathBuf::from(format!("{}.{ext}", stem.display()));
    let (png, svg) = (with("png"), with("svg"));
    {
        let root = BitMapBackend::new(&png, (WIDTH, height)).into_drawing_area();
        draw_stack(&root, charts)?;
        root.present().map_err(|e| anyhow!("cannot write {}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, (WIDTH, height)).into_drawing_area();
        draw_stack(&root, charts)?;
        root.present().map_err(|e| anyhow!("cannot write {}: {e}", svg.display()))?;
    }
    Ok(())
}

fn draw_stack<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, charts: &[Chart]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    for (area, chart) in root.split_evenly((charts.len(), 1)).iter().zip(charts) {
        draw(area, chart)?;
    }
    Ok(())
}

/// Log axes are drawn as linear axes over log10 of the data, labelled with the real values.
fn axis(v: f64, log: bool) -> f64 {
    if log { v.max(f64::MIN_POSITIVE).log10() } else { v }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.04 } else { lo.abs().max(1.0) * 0.1 };
    (lo - pad, hi + pad)
}

fn tick_label(v: f64, log: bool) -> String {
    let real = if log { 10f64.powf(v) } else { v };
    short_number(real)
}

/// Three significant digits without trailing zeros: 0.8, 50, 0.316, 2.5e-5; tiny residues are 0.
pub fn short_number(v: f64) -> String {
    if v.abs() < 1e-9 {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{v:.2e}").replace(".00e", "e").replace("0e", "e");
    }
    let decimals = (2 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing failed: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let xs = chart.series.iter().flat_map(|s| s.x.iter().map(|&v| axis(v, chart.log_x)));
    let ys = chart.series.iter().flat_map(|s| {
        let band = s.band.iter().flat_map(|(l, h)| l.iter().chain(h.iter()));
        s.y.iter().chain(band).map(|&v| axis(v, chart.log_y))
    });
    let (x0, x1) = range(xs);
    let (y0, y1) = range(ys.collect::<Vec<_>>().into_iter());
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, (FONT, 22))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let (log_x, log_y) = (chart.log_x, chart.log_y);
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_label_formatter(&|v| tick_label(*v, log_x))
        .y_label_formatter(&|v| tick_label(*v, log_y))
        .draw()
        .map_err(err)?;
    for s in &chart.series {
        let c = color(s.color);
        let pts: Vec<(f64, f64)> = s.x.iter().zip(&s.y).map(|(&x, &y)| (axis(x, log_x), axis(y, log_y))).collect();
        if let Some((low, high)) = &s.band {
            let mut poly: Vec<(f64, f64)> =
                s.x.iter().zip(high).map(|(&x, &h)| (axis(x, log_x), axis(h, log_y))).collect();
            poly.extend(s.x.iter().zip(low).rev().map(|(&x, &l)| (axis(x, log_x), axis(l, log_y))));
            ctx.draw_series(std::iter::once(Polygon::new(poly, c.mix(0.18).filled()))).map_err(err)?;
        }
        if s.markers {
            let marks =
                s.x.iter().zip(&s.y).map(|(&x, &y)| Circle::new((axis(x, log_x), axis(y, log_y)), 2, c.filled()));
            ctx.draw_series(marks).map_err(err)?;
        }
        let notes = s.notes.iter().filter(|(i, _)| *i < s.x.len()).map(|(i, text)| {
            let at = (axis(s.x[*i], log_x), axis(s.y[*i], log_y));
            EmptyElement::at(at) + Text::new(text.clone(), (4, -12), (FONT, 11).into_font().color(&c))
        });
        ctx.draw_series(notes).map_err(err)?;
        let drawn = match s.mark {
            Mark::Line => ctx.draw_series(LineSeries::new(pts, c.stroke_width(2))).map_err(err)?,
            Mark::Dashed => ctx.draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2))).map_err(err)?,
            Mark::Points => ctx.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, c.filled()))).map_err(err)?,
        };
        // Legend swatches: a solid line, a dashed line, or a short thick tick for points.
        let [(a0, a1), (b0, b1)] = match s.mark {
            Mark::Line => [(0, 10), (10, 20)],
            Mark::Dashed => [(0, 7), (12, 20)],
            Mark::Points => [(7, 10), (10, 13)],
        };
        drawn.label(&s.label).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(a0, 0), (a1, 0)], c.stroke_width(3))
                + PathElement::new(vec![(b0, 0), (b1, 0)], c.stroke_width(3))
        });
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 14))
        .position(chart.legend.clone())
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_ends_and_band_extremes() {
        let x: Vec<f64> = (0..10).map(|v| v as f64).collect();
        let s = Series::band(
            "s",
            0,
            x.clone(),
            x.clone(),
            x.iter().map(|v| v - 1.0).collect(),
            x.iter().map(|v| v + 1.0).collect(),
        )
        .thin(3);
        assert_eq!(s.x, [0.0, 4.0, 8.0, 9.0]);
        let (lo, hi) = s.band.unwrap();
        assert_eq!(lo, [-1.0, 3.0, 7.0, 8.0]);
        assert_eq!(hi, [4.0, 8.0, 10.0, 10.0]);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(short_number(0.8), "0.8");
        assert_eq!(short_number(50.0), "50");
        assert_eq!(short_number(0.31623), "0.316");
        assert_eq!(short_number(-2.2e-16), "0");
        assert_eq!(short_number(20000.0), "20000");
        assert_eq!(short_number(2.5e-5), "2.5e-5");
    }

    #[test]
    fn renders_png_and_svg() {
        let dir = std::env::temp_dir().join(format!("repro-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut chart = Chart::new("t", "x", "y").log_y();
        chart.series.push(Series::line("a", 0, vec![1.0, 2.0, 3.0], vec![1.0, 0.1, 0.01]));
        render(&chart, &dir.join("fig")).unwrap();
        let png = std::fs::read(dir.join("fig.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(dir.join("fig.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("\n0.01\n"), "log ticks are labelled with real values");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
