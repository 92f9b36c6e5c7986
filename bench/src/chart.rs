//! `tpkg-bench chart REPORT.json OUT.png`: the report as a bar chart.
//!
//! One bar per (benchmark, baseline): how many times faster tpkg is than
//! the baseline (its median over tpkg's), on a log scale. Bars with a
//! target are green when it is met and red when it is missed; the black
//! tick on such a bar is the speed the target asks for.

use std::path::Path;

use anyhow::{Context, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};
use serde_json::Value;

/// Where Debian, Fedora, Arch and macOS keep a sans-serif font. The chart
/// is optional: without one of these, it is skipped.
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
];

struct Bar {
    label: String,
    speedup: f64,
    /// The speedup the target asks for, and whether it was met.
    target: Option<(f64, bool)>,
}

fn bars(report: &Value) -> Vec<Bar> {
    report["benchmarks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| {
            let tpkg = row["tpkg_seconds"].as_f64()?;
            let baseline = row["baseline_seconds"].as_f64()?;
            let name = row["name"].as_str()?;
            let against = row["baseline"].as_str()?;
            let against = against.split(" (").next().unwrap_or(against);
            let target = row["target"].as_str().and_then(|text| {
                let met = row["target_met"].as_bool()?;
                // "≤ 1.3x" asks for a speedup of 1 / 1.3; "< 1 s" for
                // the baseline's time over one second.
                let number: f64 = text
                    .trim_start_matches(['≤', '<', ' '])
                    .trim_end_matches(['x', 's', ' '])
                    .parse()
                    .ok()?;
                let needed = if text.ends_with('s') {
                    baseline / number
                } else {
                    1.0 / number
                };
                Some((needed, met))
            });
            Some(Bar {
                label: format!("{name} vs {against}"),
                speedup: baseline / tpkg,
                target,
            })
        })
        .collect()
}

pub fn draw(report: &Path, out: &Path) -> anyhow::Result<()> {
    let report: Value = serde_json::from_slice(&std::fs::read(report)?)?;
    let bars = bars(&report);
    if bars.is_empty() {
        bail!("the report has no benchmarks");
    }
    let Some(font) = FONTS.iter().find_map(|path| std::fs::read(path).ok()) else {
        eprintln!(
            "tpkg-bench: no font found ({}); chart skipped",
            FONTS.join(", ")
        );
        return Ok(());
    };
    // plotters keeps registered fonts for the life of the process.
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    if register_font("sans-serif", FontStyle::Normal, font).is_err() {
        bail!("the font could not be read");
    }

    let height = 120 + 34 * bars.len() as u32;
    let root = BitMapBackend::new(out, (1400, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let lowest = bars
        .iter()
        .flat_map(|bar| [Some(bar.speedup), bar.target.map(|t| t.0)])
        .flatten()
        .fold(0.5f64, f64::min)
        * 0.8;
    let highest = bars.iter().map(|bar| bar.speedup).fold(2.0f64, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "tpkg vs the baseline: times faster (log scale; green: target met, red: missed, tick: target)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(560)
        .build_cartesian_2d(
            (lowest..highest).log_scale(),
            (0..bars.len()).into_segmented(),
        )?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|value| match value {
            SegmentValue::CenterOf(index) => bars
                .get(bars.len().wrapping_sub(index + 1))
                .map(|bar| bar.label.clone())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_style(("sans-serif", 15))
        .x_label_formatter(&|x| format!("{x:.1}x"))
        .x_desc("baseline median / tpkg median")
        .draw()?;
    let row = |index: usize| bars.len() - 1 - index;
    chart.draw_series(bars.iter().enumerate().map(|(index, bar)| {
        let color = match bar.target {
            Some((_, true)) => GREEN.mix(0.7),
            Some((_, false)) => RED.mix(0.8),
            None => BLACK.mix(0.3),
        };
        let y = row(index);
        let mut rectangle = Rectangle::new(
            [
                (lowest, SegmentValue::Exact(y)),
                (bar.speedup, SegmentValue::Exact(y + 1)),
            ],
            color.filled(),
        );
        rectangle.set_margin(5, 5, 0, 0);
        rectangle
    }))?;
    // `1x`: as fast as the baseline.
    chart.draw_series(std::iter::once(PathElement::new(
        [
            (1.0, SegmentValue::Exact(0)),
            (1.0, SegmentValue::Exact(bars.len())),
        ],
        BLACK.stroke_width(1),
    )))?;
    chart.draw_series(bars.iter().enumerate().filter_map(|(index, bar)| {
        let (needed, _) = bar.target?;
        let y = row(index);
        Some(PathElement::new(
            [
                (needed, SegmentValue::Exact(y)),
                (needed, SegmentValue::Exact(y + 1)),
            ],
            BLACK.stroke_width(3),
        ))
    }))?;
    let value_style = ("sans-serif", 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(bars.iter().enumerate().map(|(index, bar)| {
        Text::new(
            format!("{:.2}x", bar.speedup),
            (bar.speedup * 1.04, SegmentValue::CenterOf(row(index))),
            value_style.clone(),
        )
    }))?;
    root.present().context("writing the chart")?;
    Ok(())
}
