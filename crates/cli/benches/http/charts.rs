//! The report's pictures, as SVG files next to it: per case each client's rate (or time) as a
//! bar, with the floor and the target drawn across; and the scale cases' peak RSS against the
//! URL count. Drawn with `plotters`' SVG backend, whose text sizes are estimated, not measured
//! from a font: good enough for labels.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

/// One bar: its label, its value, and whether it is fetchall's (drawn in fetchall's colour).
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) value: f64,
    pub(crate) ours: bool,
}

/// A line drawn across the bars: the floor, or a target.
pub(crate) struct Mark {
    pub(crate) label: String,
    pub(crate) value: f64,
    pub(crate) color: RGBColor,
}

const OURS: RGBColor = RGBColor(31, 119, 180);
const THEIRS: RGBColor = RGBColor(160, 160, 160);
pub(crate) const FLOOR: RGBColor = RGBColor(0, 0, 0);
pub(crate) const TARGET: RGBColor = RGBColor(214, 39, 40);

/// A horizontal bar chart of `bars`, with `marks` as vertical lines, written to `path`.
pub(crate) fn bars(
    path: &Path,
    title: &str,
    unit: &str,
    bars: &[Bar],
    marks: &[Mark],
) -> Result<(), Box<dyn Error>> {
    let count = i32::try_from(bars.len())?;
    let height = 90 + 30 * u32::try_from(bars.len())?;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = bars
        .iter()
        .map(|b| b.value)
        .chain(marks.iter().map(|m| m.value))
        .fold(0.0, f64::max)
        * 1.15;
    let top = if top > 0.0 { top } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..top, (0..count).into_segmented())?;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => usize::try_from(*i)
            .ok()
            .and_then(|i| bars.get(i))
            .map(|b| b.label.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&label)
        .x_desc(unit)
        .draw()?;
    chart.draw_series(
        Histogram::horizontal(&chart)
            .margin(4)
            .style_func(|y, _| {
                let ours = match y {
                    SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => usize::try_from(*i)
                        .ok()
                        .and_then(|i| bars.get(i))
                        .is_some_and(|b| b.ours),
                    SegmentValue::Last => false,
                };
                if ours { OURS } else { THEIRS }.filled()
            })
            .data(
                bars.iter()
                    .enumerate()
                    .filter_map(|(i, b)| Some((i32::try_from(i).ok()?, b.value))),
            ),
    )?;
    chart.draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
        let at = (b.value, SegmentValue::CenterOf(i32::try_from(i).ok()?));
        Some(Text::new(
            format!(" {}", short(b.value)),
            at,
            ("sans-serif", 12),
        ))
    }))?;
    for mark in marks {
        let color = mark.color;
        chart
            .draw_series(LineSeries::new(
                [
                    (mark.value, SegmentValue::Exact(0)),
                    (mark.value, SegmentValue::Last),
                ],
                color.stroke_width(2),
            ))?
            .label(mark.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    if !marks.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// One line of [`rss`]: a client's peak RSS at each URL count.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) points: Vec<(f64, f64)>,
}

const PALETTE: [RGBColor; 5] = [
    OURS,
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Peak RSS (MiB) against URL count (log scale) for each series, with the `limit` drawn across.
pub(crate) fn rss(
    path: &Path,
    title: &str,
    series: &[Series],
    limit: f64,
) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let points = || series.iter().flat_map(|s| s.points.iter());
    let (lo, hi) = points().fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (lo, hi) = if lo < hi {
        (lo / 2.0, hi * 2.0)
    } else {
        (1e4, 1e8)
    };
    let top = points().map(|p| p.1).fold(limit, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("URLs")
        .y_desc("peak RSS, MiB")
        .x_label_formatter(&|x| short(*x))
        .draw()?;
    for (s, color) in series.iter().zip(PALETTE.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .draw_series(LineSeries::new(
            [(lo, limit), (hi, limit)],
            TARGET.stroke_width(2),
        ))?
        .label(format!("target: {limit} MiB"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], TARGET.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// A number in a few characters: `950`, `24.5k`, `10M`, `0.53`.
fn short(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", trim(x / 1e6))
    } else if x >= 1e4 {
        format!("{}k", trim(x / 1e3))
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
}
