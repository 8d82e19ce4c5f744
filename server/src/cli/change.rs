//! `triage change add`: records a change event on a running Triage from a CI script, through
//! `POST /api/v1/changes` with a `push` (or `admin`) token.

use std::time::Duration;

use app::model::{ChangeEvent, ChangeInput};

use super::RunError;
use crate::config::ChangeAddArgs;

/// A CI step must not hang on an unreachable server.
const TIMEOUT: Duration = Duration::from_secs(15);

pub async fn add(args: &ChangeAddArgs) -> Result<(), RunError> {
    // `https://ops.example/triage` and `…/triage/` both mean the Triage under that path.
    let mut base = args.server.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let url =
        base.join("api/v1/changes").map_err(|e| RunError::Config(format!("--server: cannot add the API path: {e}")))?;
    let input = ChangeInput {
        service: args.service.clone(),
        kind: args.kind,
        title: args.title.clone(),
        version: args.version.clone(),
        link: args.link.clone(),
        author: args.author.clone(),
        at: args.at,
        ends_at: args.ends_at,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| RunError::Io(format!("cannot start an HTTP client: {e}")))?;
    let answer = client
        .post(url.clone())
        .bearer_auth(&args.token)
        .json(&input)
        .send()
        .await
        .map_err(|e| RunError::Io(format!("{url}: {e}")))?;
    let status = answer.status();
    if status.is_success() {
        let change: ChangeEvent =
            answer.json().await.map_err(|e| RunError::Io(format!("{url}: unexpected answer: {e}")))?;
        println!("{} {}", change.id, change.headline());
        return Ok(());
    }
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    let message = body["message"].as_str().unwrap_or("no message");
    let what = match body["field"].as_str() {
        Some(field) => format!("{field}: {message}"),
        None => message.to_string(),
    };
    // What the caller sent is at fault (exit 2); anything else is a failure to retry (exit 1).
    if status.is_client_error() {
        Err(RunError::Config(format!("refused ({status}): {what}")))
    } else {
        Err(RunError::Io(format!("{url} answered {status}: {what}")))
    }
}
