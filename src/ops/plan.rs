//! `plan`: what would change on every selected host of an environment (or on its Swarm
//! services), changing nothing; optionally saved for `apply --plan`.

use crate::manifest::Loaded;
use crate::ops::context::Ctx;
use crate::ops::deploy::{self, PlanDoc, Selection};
use crate::ops::error::{OpError, OpResult};
use crate::ops::swarm::{self, SwarmPlan};
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    pub env: String,
    pub select: Selection,
    /// Save the plan document here (plain hosts only).
    pub out: Option<PathBuf>,
    /// Plan without opening the secrets, for this reason (`PlanDoc::secrets_unchecked`).
    pub secrets_unchecked: Option<String>,
}

pub enum PlanOutcome {
    Hosts {
        doc: PlanDoc,
        saved: Option<PathBuf>,
    },
    Swarm(SwarmPlan),
}

impl PlanOutcome {
    pub fn pending(&self) -> usize {
        match self {
            PlanOutcome::Hosts { doc, .. } => doc.pending(),
            PlanOutcome::Swarm(p) => p.pending(),
        }
    }

    /// A host could not be observed.
    pub fn has_errors(&self) -> bool {
        matches!(self, PlanOutcome::Hosts { doc, .. } if doc.has_errors())
    }
}

pub async fn plan(ctx: &Ctx, loaded: &Loaded, input: PlanInput) -> OpResult<PlanOutcome> {
    crate::ops::secrets::warn_plain_committed(ctx, loaded, "plan", &input.env);
    if deploy::environment(loaded, &input.env)?.is_swarm() {
        if input.out.is_some() {
            return Err(OpError::Invalid(format!(
                "--out is for plain-host environments; `{}` is a Swarm cluster, where apply plans again",
                input.env
            )));
        }
        let engine = swarm::connect(loaded, &input.env, ctx.connect_timeout).await?;
        let mut plan = swarm::plan(loaded, &input.env, &input.select, &engine, &ctx.keys).await?;
        plan.retire = crate::ops::moving::retirements(ctx, loaded, &input.env, &plan)
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        return Ok(PlanOutcome::Swarm(plan));
    }
    let commit = deploy::source_commit(loaded).unwrap_or_else(|| "uncommitted".into());
    let prepared = match &input.secrets_unchecked {
        None => {
            deploy::prepare(
                loaded,
                &input.env,
                &input.select,
                ctx.connect_timeout,
                &ctx.keys,
            )
            .await?
        }
        Some(_) => {
            deploy::prepare_unchecked(
                loaded,
                &input.env,
                &input.select,
                ctx.connect_timeout,
                &ctx.keys,
            )
            .await?
        }
    };
    crate::ops::moving::check_back_from_swarm(ctx, loaded, &input.env, &prepared).await?;
    let mut doc = deploy::plan_doc(loaded, &input.env, &commit, &prepared);
    doc.secrets_unchecked = input.secrets_unchecked.clone();
    if doc.pending() > 0 {
        let engines = prepared.iter().filter_map(|p| p.engine.as_deref());
        doc.held = crate::ops::windows::hold(loaded, &input.env, engines)
            .await
            .map(|h| h.message);
    }
    if let Some(out) = &input.out {
        let json = serde_json::to_string_pretty(&doc).expect("a plan serialises");
        std::fs::write(out, json + "\n").map_err(|e| OpError::File {
            what: "write",
            path: out.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(PlanOutcome::Hosts {
        doc,
        saved: input.out,
    })
}
