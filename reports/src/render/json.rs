//! [`Format::Json`](super::Format::Json): the report as one serde document.

use serde::Serialize;

use crate::aggregate::Aggregate;
use crate::gates::{all_passed, GateResult};

/// The `schema` of the JSON report. Fields are only ever added within a version.
pub const REPORT_SCHEMA: &str = "ct-reports/report/v1";

/// The JSON report. Field order, map order and list order are fixed, so the same inputs give
/// byte-identical output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JsonReport<'a> {
    pub schema: &'static str,
    /// Every gate passed (also `true` when no gate was checked: see `gates`).
    pub passed: bool,
    pub gates: &'a [GateResult],
    pub aggregate: &'a Aggregate,
}

pub(super) fn render(agg: &Aggregate, gates: &[GateResult]) -> String {
    let report = JsonReport {
        schema: REPORT_SCHEMA,
        passed: all_passed(gates),
        gates,
        aggregate: agg,
    };
    let mut text = serde_json::to_string_pretty(&report)
        .expect("the report is plain data: maps with string keys, finite numbers");
    text.push('\n');
    text
}
