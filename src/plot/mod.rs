//! One look for every figure: line charts with optional min-max bands, scatter plots, log axes.
//! Each chart is written twice, as `<stem>.png` (for the HTML report) and `<stem>.svg`.

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

#[derive(Clone, Debug, PartialEq)]
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
    /// Drawn pale and thin behind the others, without band or notes: a previous run's curve.
    pub faint: bool,
}

impl Series {
    pub fn line(label: impl Into<String>, color: usize, x: Vec<f64>, y: Vec<f64>) -> Series {
        Series {
            label: label.into(),
            color,
            mark: Mark::Line,
            x,
            y,
            band: None,
            notes: Vec::new(),
            markers: false,
            faint: false,
        }
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

    /// The same curve as a faint one (see [`Series::faint`]), labelled `label` (empty: no legend
    /// entry).
    pub fn faint(self, label: impl Into<String>) -> Series {
        Series { label: label.into(), band: None, notes: Vec::new(), markers: false, faint: true, ..self }
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

#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    /// `None`: the corner where the legend covers the fewest data points.
    pub legend: Option<SeriesLabelPosition>,
    pub series: Vec<Series>,
    /// What a trivial predictor scores on this chart's metric (chance accuracy, the loss of a
    /// constant prediction), drawn as labelled horizontal lines.
    pub baselines: Vec<Baseline>,
}

/// A horizontal reference line at `y`, labelled.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    pub label: String,
    pub y: f64,
}

/// A baseline stretches the y axis to reach it only while the data keep at least half of it;
/// further off it is named at the edge it lies beyond, so 97-99 % curves are not flattened to
/// show a chance level of 10 %.
const BASELINE_STRETCH: f64 = 2.0;

impl Chart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Chart {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            legend: None,
            series: Vec::new(),
            baselines: Vec::new(),
        }
    }

    /// Adds a reference line (see [`Chart::baselines`]).
    pub fn baseline(mut self, label: impl Into<String>, y: f64) -> Chart {
        self.baselines.push(Baseline { label: label.into(), y });
        self
    }

    pub fn log_y(mut self) -> Chart {
        self.log_y = true;
        self
    }

    /// Where the legend goes, overriding the automatic choice.
    pub fn legend_at(mut self, position: SeriesLabelPosition) -> Chart {
        self.legend = Some(position);
        self
    }

    pub fn log_x(mut self) -> Chart {
        self.log_x = true;
        self
    }
}

/// One figure file: one chart, or several stacked panels that share an x axis; `name` is the
/// stem of its `.png` and `.svg`.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub name: String,
    pub panels: Vec<Chart>,
}

impl Figure {
    pub fn new(name: impl Into<String>, panels: Vec<Chart>) -> Figure {
        Figure { name: name.into(), panels }
    }

    /// Writes `<stem>.png` and `<stem>.svg`.
    pub fn render(&self, stem: &Path) -> Result<()> {
        match self.panels.as_slice() {
            [chart] => render(chart, stem),
            panels => render_panels(panels, stem),
        }
    }

    /// `self` with `previous`'s curves drawn faintly behind its own, panel by panel (one legend
    /// entry, "previous run", per panel); `None` when the two have different panels or the same
    /// data (nothing to show).
    pub fn over(&self, previous: &Figure) -> Option<Figure> {
        if self.panels.len() != previous.panels.len() || self == previous {
            return None;
        }
        let panels = self
            .panels
            .iter()
            .zip(&previous.panels)
            .map(|(now, before)| {
                let faint = before
                    .series
                    .iter()
                    .enumerate()
                    .map(|(i, s)| s.clone().faint(if i == 0 { "previous run (faint)" } else { "" }));
                Chart { series: faint.chain(now.series.iter().cloned()).collect(), ..now.clone() }
            })
            .collect();
        Some(Figure { name: self.name.clone(), panels })
    }
}

/// A title suffix for curves averaged over seeds: what the line and the band are.
pub fn over_seeds(n: usize) -> String {
    if n > 1 { format!(" (mean of {n} seeds; band: min to max)") } else { String::new() }
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

/// `c` moved `share` of the way to white (a faint version that stays opaque in PNG and SVG alike).
fn mix_white(c: RGBColor, share: f64) -> RGBColor {
    let towards = |v: u8| (v as f64 + (255.0 - v as f64) * share).round() as u8;
    RGBColor(towards(c.0), towards(c.1), towards(c.2))
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

/// Tick positions in axis coordinates, and how to label them: on linear axes, multiples of a
/// 1-2-5 step (labels with as many decimals as the step needs, so neighbours never read alike);
/// on log axes, decades, or 1-2-5 or 1..9 times a power of ten when the range is short.
pub struct Ticks {
    pub at: Vec<f64>,
    log: bool,
    decimals: usize,
}

impl Ticks {
    pub fn new(lo: f64, hi: f64, log: bool) -> Ticks {
        if log {
            for mantissas in [&[1.0][..], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]] {
                let mut at = Vec::new();
                for decade in lo.floor() as i32..=hi.ceil() as i32 {
                    for m in mantissas {
                        let t = decade as f64 + f64::log10(*m);
                        if t >= lo - 1e-9 && t <= hi + 1e-9 {
                            at.push(t);
                        }
                    }
                }
                let at = thin_out(at, 10);
                if at.len() >= 4 {
                    return Ticks { at, log, decimals: 0 };
                }
            }
            // Less than a few ticks' worth of a decade: linear ticks of the real values.
            let linear = Ticks::new(10f64.powf(lo), 10f64.powf(hi), false);
            let at = linear.at.iter().filter(|v| **v > 0.0).map(|v| v.log10()).collect();
            return Ticks { at, log, decimals: linear.decimals };
        }
        let raw = (hi - lo) / 8.0;
        if raw.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !raw.is_finite() {
            return Ticks { at: vec![lo], log, decimals: 2 };
        }
        let power = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power);
        // A hair of tolerance: a bound that is a multiple of the step up to rounding gets its tick.
        let first = (lo / step - 1e-9).ceil() as i64;
        let last = (hi / step + 1e-9).floor() as i64;
        let at = (first..=last).map(|k| k as f64 * step).collect();
        let decimals = (-step.log10().floor()).max(0.0) as usize;
        Ticks { at, log, decimals }
    }

    pub fn label(&self, v: f64) -> String {
        let real = if self.log { 10f64.powf(v) } else { v };
        if real.abs() < 1e-12 {
            return "0".into();
        }
        if self.log && self.decimals == 0 || !(1e-4..1e6).contains(&real.abs()) {
            return short_number(real);
        }
        format!("{real:.*}", self.decimals)
    }
}

/// A linear f64 axis whose labelled grid lines are exactly [`Ticks::at`].
struct TickedAxis {
    inner: plotters::coord::types::RangedCoordf64,
    at: Vec<f64>,
}

impl TickedAxis {
    fn new(range: std::ops::Range<f64>, ticks: &Ticks) -> TickedAxis {
        TickedAxis { inner: range.into(), at: ticks.at.clone() }
    }
}

impl Ranged for TickedAxis {
    type ValueType = f64;
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold grid lines at the ticks; no light ones in between.
        if hint.weight().allow_light_points() { Vec::new() } else { self.at.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// Every k-th tick, so that at most `max` remain.
fn thin_out(at: Vec<f64>, max: usize) -> Vec<f64> {
    let k = at.len().div_ceil(max).max(1);
    at.into_iter().step_by(k).collect()
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
    root.fill(&WHITE).map_err(drawing_failed)?;
    let Bounds { x: (x0, x1), y: (y0, y1), off_axis } = bounds(chart);
    let (x_ticks, y_ticks) = (Ticks::new(x0, x1, chart.log_x), Ticks::new(y0, y1, chart.log_y));
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, (FONT, 22))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(TickedAxis::new(x0..x1, &x_ticks), TickedAxis::new(y0..y1, &y_ticks))
        .map_err(drawing_failed)?;
    let (log_x, log_y) = (chart.log_x, chart.log_y);
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_label_formatter(&|v| x_ticks.label(*v))
        .y_label_formatter(&|v| y_ticks.label(*v))
        .draw()
        .map_err(drawing_failed)?;
    let mut taken_notes: Vec<(i32, i32, i32, i32)> = Vec::new();
    for s in &chart.series {
        draw_one(&mut ctx, s, (log_x, log_y), &mut taken_notes)?;
    }
    draw_baselines(&mut ctx, chart, &off_axis, ((x0, x1), (y0, y1)))?;
    let legend = chart.legend.clone().unwrap_or_else(|| emptiest_corner(&ctx, chart));
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 14))
        .position(legend)
        .draw()
        .map_err(drawing_failed)?;
    Ok(())
}

/// The axes' ranges: the data's (bands included), stretched to take in the baselines close
/// enough to it; the others are returned to be named at an edge (with whether they lie below).
fn bounds(chart: &Chart) -> Bounds<'_> {
    let xs = chart.series.iter().flat_map(|s| s.x.iter().map(|&v| axis(v, chart.log_x)));
    let ys = chart.series.iter().flat_map(|s| {
        let band = s.band.iter().flat_map(|(l, h)| l.iter().chain(h.iter()));
        s.y.iter().chain(band).map(|&v| axis(v, chart.log_y))
    });
    let (x0, x1) = range(xs);
    let (y0, y1) = range(ys.collect::<Vec<_>>().into_iter());
    // Baselines close enough to the data join the range; the others are named at an edge.
    let (mut y0, mut y1) = (y0, y1);
    let mut off_axis: Vec<(&Baseline, bool)> = Vec::new();
    for b in &chart.baselines {
        let at = axis(b.y, chart.log_y);
        let (lo, hi) = (y0.min(at), y1.max(at));
        if hi - lo <= BASELINE_STRETCH * (y1 - y0) {
            (y0, y1) = range([lo, hi].into_iter());
        } else {
            off_axis.push((b, at < y0));
        }
    }
    Bounds { x: (x0, x1), y: (y0, y1), off_axis }
}

struct Bounds<'c> {
    x: (f64, f64),
    y: (f64, f64),
    off_axis: Vec<(&'c Baseline, bool)>,
}

/// One series: its band, markers, notes (each left out where it would overlap one already
/// drawn: crowded paths stay legible), its curve or points, and its legend entry.
fn draw_one<'a, DB: DrawingBackend + 'a, X, Y>(
    ctx: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    s: &Series,
    (log_x, log_y): (bool, bool),
    taken_notes: &mut Vec<(i32, i32, i32, i32)>,
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
    DB::ErrorType: 'static,
{
    // A faint curve: its colour washed out towards white, thin, small points.
    let (c, width, radius) = if s.faint { (mix_white(color(s.color), 0.7), 1, 2) } else { (color(s.color), 2, 4) };
    let pts: Vec<(f64, f64)> = s.x.iter().zip(&s.y).map(|(&x, &y)| (axis(x, log_x), axis(y, log_y))).collect();
    if let Some((low, high)) = &s.band {
        let mut poly: Vec<(f64, f64)> = s.x.iter().zip(high).map(|(&x, &h)| (axis(x, log_x), axis(h, log_y))).collect();
        poly.extend(s.x.iter().zip(low).rev().map(|(&x, &l)| (axis(x, log_x), axis(l, log_y))));
        ctx.draw_series(std::iter::once(Polygon::new(poly, c.mix(0.18).filled()))).map_err(drawing_failed)?;
    }
    if s.markers {
        let marks = s.x.iter().zip(&s.y).map(|(&x, &y)| Circle::new((axis(x, log_x), axis(y, log_y)), 2, c.filled()));
        ctx.draw_series(marks).map_err(drawing_failed)?;
    }
    // A note that would overlap one already drawn is left out: crowded paths stay legible.
    let mut notes = Vec::new();
    for (i, text) in s.notes.iter().filter(|(i, _)| *i < s.x.len()) {
        let at = (axis(s.x[*i], log_x), axis(s.y[*i], log_y));
        let (px, py) = ctx.backend_coord(&at);
        let rect = (px + 4, py - 12, px + 4 + 7 * text.chars().count() as i32, py);
        if taken_notes.iter().any(|r| overlaps(*r, rect)) {
            continue;
        }
        taken_notes.push(rect);
        notes.push(EmptyElement::at(at) + Text::new(text.clone(), (4, -12), (FONT, 11).into_font().color(&c)));
    }
    ctx.draw_series(notes).map_err(drawing_failed)?;
    let drawn = match s.mark {
        Mark::Line => ctx.draw_series(LineSeries::new(pts, c.stroke_width(width))).map_err(drawing_failed)?,
        Mark::Dashed => {
            ctx.draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(width))).map_err(drawing_failed)?
        }
        Mark::Points => {
            ctx.draw_series(pts.into_iter().map(|p| Circle::new(p, radius, c.filled()))).map_err(drawing_failed)?
        }
    };
    if s.label.is_empty() {
        return Ok(());
    }
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
    Ok(())
}

/// The baselines: a dashed line with its label where it lies on the axis, a label with an arrow
/// at the edge it lies beyond otherwise.
fn draw_baselines<DB: DrawingBackend, X, Y>(
    ctx: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    chart: &Chart,
    off_axis: &[(&Baseline, bool)],
    ((x0, x1), (y0, y1)): ((f64, f64), (f64, f64)),
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
    DB::ErrorType: 'static,
{
    let log_y = chart.log_y;
    let grey = RGBColor(110, 110, 110);
    let text_style = (FONT, 13).into_font().color(&grey);
    for b in chart.baselines.iter().filter(|b| !off_axis.iter().any(|(o, _)| std::ptr::eq(*o, *b))) {
        let at = axis(b.y, log_y);
        ctx.draw_series(DashedLineSeries::new([(x0, at), (x1, at)], 4, 4, grey.stroke_width(1)))
            .map_err(drawing_failed)?;
        let label = EmptyElement::at((x0, at)) + Text::new(b.label.clone(), (6, -16), text_style.clone());
        ctx.draw_series(std::iter::once(label)).map_err(drawing_failed)?;
    }
    for (k, (b, below)) in off_axis.iter().enumerate() {
        let (edge, dy) = if *below { (y0, -18 - 16 * k as i32) } else { (y1, 4 + 16 * k as i32) };
        let arrow = if *below { "↓" } else { "↑" };
        let text = format!("{arrow} {} (off this axis)", b.label);
        let label = EmptyElement::at((x0, edge)) + Text::new(text, (6, dy), text_style.clone());
        ctx.draw_series(std::iter::once(label)).map_err(drawing_failed)?;
    }
    Ok(())
}

fn drawing_failed<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

fn overlaps(a: (i32, i32, i32, i32), b: (i32, i32, i32, i32)) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// The corner whose legend-sized box covers the fewest data points (and band edges).
fn emptiest_corner<DB: DrawingBackend, X, Y>(
    ctx: &ChartContext<DB, Cartesian2d<X, Y>>,
    chart: &Chart,
) -> SeriesLabelPosition
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (xr, yr) = ctx.plotting_area().get_pixel_range();
    let longest = chart.series.iter().map(|s| s.label.chars().count()).max().unwrap_or(0) as i32;
    let (w, h) = (40 + 8 * longest, 12 + 20 * chart.series.len() as i32);
    let boxes = [
        (SeriesLabelPosition::UpperRight, (xr.end - w, yr.start, xr.end, yr.start + h)),
        (SeriesLabelPosition::UpperLeft, (xr.start, yr.start, xr.start + w, yr.start + h)),
        (SeriesLabelPosition::LowerRight, (xr.end - w, yr.end - h, xr.end, yr.end)),
        (SeriesLabelPosition::LowerLeft, (xr.start, yr.end - h, xr.start + w, yr.end)),
    ];
    let mut points = Vec::new();
    for s in &chart.series {
        let (lx, ly) = (chart.log_x, chart.log_y);
        points.extend(s.x.iter().zip(&s.y).map(|(&x, &y)| ctx.backend_coord(&(axis(x, lx), axis(y, ly)))));
        if let Some((low, high)) = &s.band {
            for edge in [low, high] {
                points.extend(s.x.iter().zip(edge).map(|(&x, &y)| ctx.backend_coord(&(axis(x, lx), axis(y, ly)))));
            }
        }
    }
    // Lines between sparse points cross boxes too: count midpoints as well.
    let mids: Vec<(i32, i32)> = points.windows(2).map(|w| ((w[0].0 + w[1].0) / 2, (w[0].1 + w[1].1) / 2)).collect();
    let inside = |b: &(i32, i32, i32, i32)| {
        points.iter().chain(&mids).filter(|(x, y)| *x >= b.0 && *x <= b.2 && *y >= b.1 && *y <= b.3).count()
    };
    boxes.into_iter().min_by_key(|(_, b)| inside(b)).map(|(p, _)| p).unwrap_or(SeriesLabelPosition::UpperRight)
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

    /// The SVG of `chart`.
    fn svg(chart: &Chart) -> String {
        let dir = tempfile::tempdir().unwrap();
        render(chart, &dir.path().join("c")).unwrap();
        std::fs::read_to_string(dir.path().join("c.svg")).unwrap()
    }

    #[test]
    fn a_previous_run_is_drawn_faint_behind_only_when_its_data_differ() {
        let x = vec![1.0, 2.0, 3.0];
        let chart = |y: Vec<f64>| {
            let mut c = Chart::new("loss", "epoch", "MSE");
            c.series.push(Series::band("M1", 0, x.clone(), y.clone(), y.clone(), y.iter().map(|v| v + 1.0).collect()));
            c.series.push(Series::line("M2", 1, x.clone(), y).note(0, "start"));
            c
        };
        let now = Figure::new("loss", vec![chart(vec![3.0, 2.0, 1.0])]);
        assert_eq!(now.over(&now.clone()), None, "same data: nothing to show");
        assert_eq!(now.over(&Figure::new("loss", vec![])), None, "other panels: not comparable");

        let over = now.over(&Figure::new("loss", vec![chart(vec![4.0, 3.0, 2.0])])).unwrap();
        let series = &over.panels[0].series;
        assert_eq!(series.len(), 4);
        // The previous curves first (drawn behind), bare and faint, one legend entry for them all.
        assert!(series[..2].iter().all(|s| s.faint && s.band.is_none() && s.notes.is_empty()));
        assert_eq!((series[0].label.as_str(), series[1].label.as_str()), ("previous run (faint)", ""));
        assert_eq!(series[0].y, vec![4.0, 3.0, 2.0]);
        assert_eq!(&series[2..], &now.panels[0].series[..], "this run's curves as they were");

        // Drawn washed out, 1 px wide: M1's blue (31, 119, 180) 70 % of the way to white is
        // (31 + 0.7·224, 119 + 0.7·136, 180 + 0.7·75) = (187.8, 214.2, 232.5), rounded #BCD6E9.
        let drawn = svg(&over.panels[0]);
        assert!(drawn.contains(r##"stroke="#BCD6E9" stroke-width="1""##), "{drawn}");
        assert_eq!(drawn.matches("previous run (faint)").count(), 1);
    }

    #[test]
    fn baselines_are_drawn_and_named_near_or_off_the_data() {
        let x: Vec<f64> = (0..10).map(|v| v as f64).collect();
        let near = Chart::new("t", "x", "loss").baseline("constant prediction 0.50", 0.5);
        let near =
            Chart { series: vec![Series::line("a", 0, x.clone(), x.iter().map(|v| 0.1 + 0.03 * v).collect())], ..near };
        let text = svg(&near);
        assert!(text.contains("constant prediction 0.50") && !text.contains("off this axis"), "drawn on the axis");
        // Curves at 97-99 %: chance (10 %) would flatten them; it is named below the axis instead.
        let far = Chart::new("t", "x", "accuracy (%)").baseline("chance 10 %", 10.0);
        let far =
            Chart { series: vec![Series::line("a", 0, x.clone(), x.iter().map(|v| 97.0 + 0.2 * v).collect())], ..far };
        assert!(svg(&far).contains("↓ chance 10 % (off this axis)"));
        assert!(!svg(&Chart { baselines: vec![], ..far }).contains("chance"));
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
    fn linear_ticks_step_by_1_2_5_and_label_distinctly() {
        // The loss panel that once read 1.02, 1.02, 1.01, 1.01: span 0.034, raw step 0.00425 -> 0.005.
        let t = Ticks::new(0.9905, 1.0245, false);
        let labels: Vec<String> = t.at.iter().map(|v| t.label(*v)).collect();
        assert_eq!(labels, ["0.995", "1.000", "1.005", "1.010", "1.015", "1.020"]);
        let t = Ticks::new(-3.2, 5.1, false);
        assert_eq!(t.at, [-2.0, 0.0, 2.0, 4.0]);
        assert_eq!(t.label(-2.0), "-2");
        let t = Ticks::new(0.0, 14.0, false);
        assert_eq!(t.at.iter().map(|v| t.label(*v)).collect::<Vec<_>>(), ["0", "2", "4", "6", "8", "10", "12", "14"]);
    }

    #[test]
    fn log_ticks_sit_on_round_values() {
        // Batch sizes 5..1000: 1-2-5 ticks from 5 to 1000.
        let t = Ticks::new(5f64.log10(), 1000f64.log10(), true);
        let labels: Vec<String> = t.at.iter().map(|v| t.label(*v)).collect();
        assert_eq!(labels, ["5", "10", "20", "50", "100", "200", "500", "1000"]);
        // Seven decades: one tick per decade.
        let t = Ticks::new(-6.0, 0.5, true);
        assert_eq!(
            t.at.iter().map(|v| t.label(*v)).collect::<Vec<_>>(),
            ["1e-6", "1e-5", "0.0001", "0.001", "0.01", "0.1", "1"]
        );
        // A fifth of a decade: linear ticks of the real values.
        let t = Ticks::new(0.04f64.log10(), 0.06f64.log10(), true);
        let labels: Vec<String> = t.at.iter().map(|v| t.label(*v)).collect();
        assert_eq!(labels, ["0.040", "0.045", "0.050", "0.055", "0.060"]);
        // Two and a half decades of parameter counts: 1-2-5.
        let t = Ticks::new(1645f64.log10(), 951_910f64.log10(), true);
        let labels: Vec<String> = t.at.iter().map(|v| t.label(*v)).collect();
        assert_eq!(labels, ["2000", "5000", "10000", "20000", "50000", "100000", "200000", "500000"]);
    }

    #[test]
    fn renders_png_and_svg() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let mut chart = Chart::new("t", "x", "y").log_y();
        chart.series.push(Series::line("a", 0, vec![1.0, 2.0, 3.0], vec![1.0, 0.1, 0.01]));
        render(&chart, &dir.join("fig")).unwrap();
        let png = std::fs::read(dir.join("fig.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(dir.join("fig.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("\n0.01\n"), "log ticks are labelled with real values");
    }
}
