//! The report: sections of measured tables and charts, and the articles' assertions with the
//! figure that tests each and a verdict, written as Markdown beside its SVG charts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::chart::BarChart;

/// How an assertion of the articles fares against the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The measurement bears it out.
    Holds,
    /// It holds for the bare design; latchkey's mitigation changes the figure.
    HoldsWithMitigation,
    /// The measurement contradicts it.
    DoesNotHold,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Holds => "holds",
            Self::HoldsWithMitigation => "holds without latchkey's mitigation; with it, see the figure",
            Self::DoesNotHold => "does not hold",
        }
    }
}

/// One assertion of the background articles, and what this run measured of it.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// The article's words (and their translation).
    pub claim: String,
    /// The measured figure that tests it.
    pub figure: String,
    /// How it fares.
    pub verdict: Verdict,
}

/// One section of the report.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// Its heading.
    pub title: String,
    /// What was measured and how.
    pub method: String,
    /// The table: a header row, then the rows.
    pub table: Vec<Vec<String>>,
    /// Charts drawn from the table.
    pub charts: Vec<BarChart>,
    /// The articles' assertions this section tests.
    pub assertions: Vec<Assertion>,
}

/// The whole report.
#[derive(Debug)]
pub struct Report {
    quick: bool,
    sections: Vec<Section>,
}

impl Report {
    /// An empty report (`quick` says how it was measured).
    pub fn new(quick: bool) -> Self {
        Self { quick, sections: Vec::new() }
    }

    /// Adds a section.
    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    /// Writes `report.md` and the charts into `dir`; the report's path.
    pub fn write(&self, dir: &Path, took: Duration) -> std::io::Result<PathBuf> {
        let mut md = String::new();
        let _ = writeln!(md, "# Session login and token login, measured\n");
        let _ = writeln!(
            md,
            "Made by `latchkey compare{}` on this machine in {:.0} s ({} {}, {} cores). Every figure below is a \
             measurement of that run; the verdicts compare them with the background articles' assertions.\n",
            if self.quick { " --quick" } else { "" },
            took.as_secs_f64(),
            std::env::consts::OS,
            std::env::consts::ARCH,
            super::load::cores(),
        );
        let _ = writeln!(md, "## The articles' assertions\n");
        let _ = writeln!(md, "| assertion | measured | verdict |\n|---|---|---|");
        for assertion in self.sections.iter().flat_map(|section| &section.assertions) {
            let _ = writeln!(md, "| {} | {} | {} |", assertion.claim, assertion.figure, assertion.verdict.as_str());
        }
        for section in &self.sections {
            let _ = writeln!(md, "\n## {}\n\n{}\n", section.title, section.method);
            if let Some((header, rows)) = section.table.split_first() {
                let _ = writeln!(md, "| {} |", header.join(" | "));
                let _ = writeln!(md, "|{}|", vec!["---"; header.len()].join("|"));
                for row in rows {
                    let _ = writeln!(md, "| {} |", row.join(" | "));
                }
            }
            for chart in &section.charts {
                std::fs::write(dir.join(&chart.file), chart.svg().map_err(std::io::Error::other)?)?;
                let _ = writeln!(md, "\n![{}]({})", chart.title, chart.file);
            }
        }
        let path = dir.join("report.md");
        std::fs::write(&path, md)?;
        Ok(path)
    }
}
