//! The filter engine, offline: a chain loaded from texts (filter files as they would be after
//! an edit), deciding recorded code objects exactly as the recorder does (spec F4, F5, F7).
//!
//! `ct-rollout fix-filters` re-evaluates recorded filter decision changes with it. The
//! planning lives in `ct_reports::fix_filters`, which stays free of the recorder crate (and
//! of PyO3); this is the one place that hands it the real engine.

use std::path::PathBuf;

use ct_reports::fix_filters::{ChainText, FilterEngine, Query, Verdict};

use super::builtin::BUILTIN_TOML;
use super::chain::FilterChain;
use super::load::project_root_of;
use super::model::Exec;

/// [`FilterEngine`] backed by [`FilterChain`].
#[derive(Clone, Copy, Debug, Default)]
pub struct OfflineEngine;

impl OfflineEngine {
    /// The chain made of `chain`'s texts: each file with the project root its path gives it
    /// (F1), as if it were loaded from that path.
    pub fn load(chain: &[ChainText]) -> Result<FilterChain, String> {
        let mut builder = FilterChain::builder();
        for source in chain {
            builder = match source {
                ChainText::Builtin => builder.builtin(),
                ChainText::File { path, text } => builder.inline(
                    path.display().to_string(),
                    project_root_of(&PathBuf::from(path)),
                    text.clone(),
                ),
            };
        }
        builder.build().map_err(|e| e.to_string())
    }
}

impl FilterEngine for OfflineEngine {
    fn builtin_text(&self) -> &str {
        BUILTIN_TOML
    }

    fn evaluate(&self, chain: &[ChainText], queries: &[Query]) -> Result<Vec<Verdict>, String> {
        let chain = OfflineEngine::load(chain)?;
        Ok(queries
            .iter()
            .map(|q| {
                let ctx = chain.scope_context(&q.filename, q.module_name.as_deref(), &q.qualname);
                let d = chain.evaluate(&ctx);
                Verdict {
                    exec: match d.exec() {
                        Exec::Trace => ct_shadow::Exec::Trace,
                        Exec::Skip => ct_shadow::Exec::Skip,
                    },
                    rule: d
                        .matched_rule()
                        .map(|m| (m.source_index, m.index_in_source)),
                    exec_rule: chain
                        .rules()
                        .iter()
                        .rev()
                        .find(|r| r.exec().is_some() && r.matches(&ctx))
                        .map(|r| (r.source_index(), r.index_in_source())),
                    file_subject: ctx.file_subject().map(str::to_owned),
                    object_name: ctx.object_name.clone(),
                }
            })
            .collect())
    }
}
