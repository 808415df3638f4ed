//! One SVG per benchmark group (`target/bench/GROUP.svg`, plotters): the
//! guest and baseline medians of each case side by side, and their ratio.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::results::Entry;
use crate::project_root;

/// Draw `entries` of `group`; returns the file written.
pub fn group(group: &str, entries: &[Entry]) -> Result<PathBuf> {
    let path = project_root().join(format!("target/bench/{group}.svg"));
    let height = 120 + 22 * u32::try_from(entries.len()).unwrap_or(u32::MAX / 44);
    {
        let root = SVGBackend::new(&path, (1100, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let (left, right) = root.split_horizontally(700);
        draw_medians(&left, group, entries).map_err(|e| anyhow!("plotting {group}: {e}"))?;
        draw_ratios(&right, entries).map_err(|e| anyhow!("plotting {group}: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(path)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Horizontal bars, two rows per case: the guest (blue) and the baseline
/// (grey), each as a share of the case's larger median (units differ
/// between cases; the table and results.json have the values).
fn draw_medians(area: &Area, group: &str, entries: &[Entry]) -> PlotResult {
    let rows = 2 * entries.len();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{group}: guest vs baseline, share of the larger median"),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(230)
        .build_cartesian_2d(0f64..1.05, (0..rows).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(j) => entries.get(j / 2).map_or(String::new(), |e| {
                let side = if j % 2 == 0 { "guest" } else { "native" };
                format!("{} {side} ({})", e.case, e.unit)
            }),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(entries.iter().enumerate().flat_map(|(i, e)| {
        let top = e.guest_median.max(e.native_median).max(f64::MIN_POSITIVE);
        [
            (2 * i, e.guest_median, RGBColor(52, 101, 164)),
            (2 * i + 1, e.native_median, RGBColor(160, 160, 160)),
        ]
        .map(|(row, v, color)| {
            Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(row)),
                    (v / top, SegmentValue::Exact(row + 1)),
                ],
                color.filled(),
            )
        })
    }))?;
    Ok(())
}

/// Bars of guest/baseline with a line at 1.0.
fn draw_ratios(area: &Area, entries: &[Entry]) -> PlotResult {
    let n = entries.len();
    let max = entries
        .iter()
        .map(|e| e.ratio)
        .filter(|r| r.is_finite())
        .fold(1.2f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption("ratio guest / baseline", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(10)
        .build_cartesian_2d(0f64..max * 1.05, 0f64..(2 * n) as f64)?;
    chart.configure_mesh().disable_y_mesh().y_labels(0).draw()?;
    chart.draw_series(entries.iter().enumerate().map(|(i, e)| {
        // Level with the case's two rows on the left.
        let y = (2 * i) as f64;
        Rectangle::new(
            [(0.0, y + 0.3), (e.ratio.max(0.0), y + 1.7)],
            RGBColor(78, 154, 6).filled(),
        )
    }))?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, 0.0), (1.0, (2 * n) as f64)],
        BLACK.stroke_width(1),
    )))?;
    Ok(())
}
