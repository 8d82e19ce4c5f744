//! "Run now": a probe's definition run once on request, exactly as the scheduler would run it
//! (same compile step, same network policy, same result), with nothing stored; and the policy's
//! verdict on its target, so a form can say which rule refuses it and how to allow it.

use app::model::{PolicyRefusal, ProbeSpec, ProbeTrial};
use uuid::Uuid;

use crate::error::Error;
use crate::monitor::check::execute::{self, ScrapeMemory};
use crate::monitor::check::policy::{self, NetworkPolicy};
use crate::monitor::check::spec::{self, Check};

/// The most of a body "Run now" shows as a sample.
const SAMPLE_BYTES: usize = 64 * 1024;

/// Runs `spec` once. Push probes have nothing to run (their agent sends the results).
pub async fn run_once(spec: &ProbeSpec, policy: &NetworkPolicy) -> Result<ProbeTrial, Error> {
    let compiled = spec::compile(spec.id.unwrap_or_else(Uuid::nil), spec.service_id.unwrap_or_else(Uuid::nil), spec)
        .map_err(|e| Error::invalid(e.field, e.message))?;
    let Some(check) = &compiled.check else {
        return Err(Error::invalid("kind", "a push probe receives its results from an agent: there is nothing to run"));
    };
    let refused = target_refusal(check, policy).await;
    let mut memory = ScrapeMemory::default();
    let (result, body) =
        execute::run_keeping_body(compiled.id, compiled.kind, check, &compiled.pool_mapping, policy, &mut memory).await;
    let sample = body.filter(|b| !b.is_empty()).map(|b| {
        let cut = b.len().min(SAMPLE_BYTES);
        String::from_utf8_lossy(&b[..cut]).into_owned()
    });
    Ok(ProbeTrial { result, refused, sample })
}

/// The policy's refusal of a valid spec's target, if it refuses it (for the answer to a save).
pub async fn refusal(spec: &ProbeSpec, policy: &NetworkPolicy) -> Option<PolicyRefusal> {
    let compiled = spec::compile(Uuid::nil(), Uuid::nil(), spec).ok()?;
    target_refusal(compiled.check.as_ref()?, policy).await
}

async fn target_refusal(check: &Check, policy: &NetworkPolicy) -> Option<PolicyRefusal> {
    let (host, port) = check.target()?;
    policy::refused(policy, host, port, check.timeout()).await
}
