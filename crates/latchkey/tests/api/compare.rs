//! `latchkey compare --quick` (issue 15): it runs latchkey in each mode, on the embedded store
//! and on the suite's PostgreSQL and Redis, and its report has every section, each figure a
//! measurement (a finite number, not a placeholder) and each chart an SVG document.

use std::process::Command;

#[test]
fn the_quick_comparison_writes_every_section_with_measured_figures_and_charts() {
    // The comparison runs its own instances on the embedded store whatever the suite's backend:
    // the suite's PostgreSQL and Redis passes would only repeat the SQLite pass.
    if std::env::var("LATCHKEY_TEST_BACKEND").is_ok_and(|backend| backend != "sqlite") {
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (name, _) in std::env::vars() {
        if name.starts_with("LATCHKEY_") {
            command.env_remove(name);
        }
    }
    let output = command
        .args(["compare", "--quick", "--postgres", &latchkey_testkit::postgres::admin_url()])
        .args(["--redis", &latchkey_testkit::redis::url(), "--out"])
        .arg(out.path())
        .output()
        .expect("latchkey compare");
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{progress}");
    assert!(progress.contains("compare [") && progress.contains("report written"), "progress is shown: {progress}");
    let report = std::fs::read_to_string(out.path().join("report.md")).expect("report.md");
    for heading in [
        "## The articles' assertions",
        "## Data on the wire",
        "## Server state",
        "## Server load",
        "## Scalability",
        "## Capacity model",
        "## Revocation",
        "## Login and refresh",
        "## Security",
    ] {
        assert!(report.contains(heading), "{heading} is missing:\n{report}");
    }
    // A count can be measured as zero (a cached check sends the store nothing); most figures are
    // not, and a report of zeros is not a measurement.
    let (mut figures, mut positive) = (0, 0);
    for line in report.lines().filter(|line| line.starts_with("| ") && !line.starts_with("|---")) {
        for cell in line.split('|').map(str::trim) {
            assert!(!cell.contains("NaN") && !cell.contains("TODO"), "a placeholder in: {line}");
            assert!(!["inf", "n/a", "?", "-"].contains(&cell), "a placeholder in: {line}");
            if let Ok(number) = cell.parse::<f64>() {
                assert!(number.is_finite() && number >= 0.0, "not a measurement: {cell} in {line}");
                figures += 1;
                positive += usize::from(number > 0.0);
            }
        }
    }
    assert!(figures >= 120 && positive * 5 >= figures * 4, "{positive} of {figures} figures positive in:\n{report}");
    assert!(!report.contains("Not measured") && !report.contains("Not built"), "every section measured:\n{report}");
    let verdicts = report.lines().filter(|line| line.contains("| holds") || line.contains("| does not hold")).count();
    assert!(verdicts >= 14, "every assertion has a verdict:\n{report}");
    for chart in ["wire.svg", "state.svg", "load.svg", "scale.svg", "revocation.svg", "costs.svg"] {
        let svg = std::fs::read_to_string(out.path().join(chart)).expect(chart);
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{chart} is a chart");
        assert!(report.contains(&format!("]({chart})")), "{chart} is linked from the report");
    }
}
