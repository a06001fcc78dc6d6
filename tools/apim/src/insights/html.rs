//! `apim insights --html`: one self-contained file (no fetch, no external script or font)
//! whose script draws requests over time per consumer and per plan as SVG lines and fills the
//! tables from the report embedded as JSON. Everything from the log reaches the page as text
//! (`textContent`), never as markup, and the embedded JSON has `<` escaped, so a consumer id
//! or route name in a hostile log cannot inject script.

use super::report::Report;

const PAGE: &str = include_str!("report.html");

/// The page with `report` embedded.
pub fn render(report: &Report) -> String {
    let data = report
        .to_json()
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    PAGE.replace("/*DATA*/null", &data)
}
