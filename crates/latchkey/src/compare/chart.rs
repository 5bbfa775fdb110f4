//! Horizontal bar charts, drawn by plotters into SVG text.

use plotters::prelude::*;

/// A bar chart of labelled values.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// The file it is written to, beside the report.
    pub file: String,
    /// Its title.
    pub title: String,
    /// The unit of the values (the axis label).
    pub unit: String,
    /// The bars, top to bottom.
    pub bars: Vec<(String, f64)>,
}

impl BarChart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String, String> {
        let mut svg = String::new();
        let height = 80 + 34 * u32::try_from(self.bars.len()).unwrap_or(u32::MAX / 64).max(1);
        {
            let root = SVGBackend::with_string(&mut svg, (760, height)).into_drawing_area();
            root.fill(&WHITE).map_err(|err| err.to_string())?;
            let max = self.bars.iter().map(|(_, value)| *value).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
            let count = self.bars.len();
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(230)
                .build_cartesian_2d(0.0..max * 1.1, (0..count).into_segmented())
                .map_err(|err| err.to_string())?;
            let labels: Vec<String> = self.bars.iter().map(|(label, _)| label.clone()).collect();
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc(self.unit.as_str())
                .y_label_formatter(&|segment| match segment {
                    SegmentValue::CenterOf(index) => labels.get(*index).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .draw()
                .map_err(|err| err.to_string())?;
            chart
                .draw_series(self.bars.iter().enumerate().map(|(index, (_, value))| {
                    let mut bar = Rectangle::new(
                        [(0.0, SegmentValue::Exact(index)), (*value, SegmentValue::Exact(index + 1))],
                        RGBColor(37, 99, 235).filled(),
                    );
                    bar.set_margin(5, 5, 0, 0);
                    bar
                }))
                .map_err(|err| err.to_string())?;
            root.present().map_err(|err| err.to_string())?;
        }
        Ok(svg)
    }
}
