//! Automation runs: the `automation.run` job of the `automations` queue. A run
//! takes its execution's next step, does it through the domain layer as the
//! automation (actor `automation`), and records the step's result in the same
//! unit of work as the step's writes; then the next, until the plan is done or a
//! step fails. A step that fails a rule rolls back whatever it wrote and fails
//! the run with the rule's error. A `wait` ends the job and enqueues the next run
//! at its time, in the unit that records it. A webhook is called outside any
//! transaction; 5xx and timeouts retry with the job's backoff.

pub mod webhook;

use crate::auth::sealing::Sealer;
use crate::channels::Channel;
use crate::domain::automations::{
    self, After, Execution, MAX_PLAN, Step, StepResult, WebhookPolicy,
};
use crate::domain::contacts::{self, ContactId};
use crate::domain::conversations::{self, ConversationId, ConversationPatch};
use crate::domain::{Actor, UnitOfWork, Units, messages};
use crate::feathers::FeathersError;
use crate::feathers::error::ErrorKind;
use crate::jobs::kinds::AUTOMATION_RUN;
use crate::jobs::worker::{Handler, HandlerFuture};
use crate::jobs::{Job, JobError};
use crate::messaging::compose::{self, Body, Context, Sender};
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What runs share.
pub struct Runner {
    pub units: Units,
    pub sealer: Arc<Sealer>,
    pub webhook_timeout: Duration,
    pub policy: WebhookPolicy,
}

/// The handlers of the `automations` queue.
pub fn handlers(runner: Arc<Runner>) -> HashMap<&'static str, Handler> {
    let run: Handler = Arc::new(
        move |job: Job, cancel: CancellationToken| -> HandlerFuture {
            let runner = runner.clone();
            Box::pin(async move { runner.run(&job, &cancel).await })
        },
    );
    HashMap::from([(AUTOMATION_RUN, run)])
}

fn retry(e: FeathersError) -> JobError {
    JobError::Retry(format!("{}: {}", e.message, e.chain()))
}

/// A rule the step broke (the client's kind of error: the step fails), as against a
/// database or internal failure (the run is retried).
fn is_rule(e: &FeathersError) -> bool {
    !matches!(
        e.kind,
        ErrorKind::GeneralError | ErrorKind::Unavailable | ErrorKind::Timeout
    )
}

/// How one step went.
enum Outcome {
    Done(Value),
    /// Done, and the webhook's answer adds these steps after it.
    DoneAdding(Value, Vec<Step>),
    Failed(Value),
}

impl Runner {
    async fn run(&self, job: &Job, cancel: &CancellationToken) -> Result<(), JobError> {
        let org = (job.organization_id)
            .ok_or_else(|| JobError::Fatal("an automation run has no organization".into()))?;
        let id = (job.payload.get("execution_id").and_then(Value::as_i64))
            .ok_or_else(|| JobError::Fatal("an automation run has no execution_id".into()))?;
        let from = (job.payload.get("from_step").and_then(Value::as_u64)).unwrap_or(0) as usize;
        loop {
            if cancel.is_cancelled() {
                return Err(JobError::Retry("stopped".into()));
            }
            let Some(exec) = automations::load_execution(&self.units.db, org, id)
                .await
                .map_err(retry)?
            else {
                return Ok(()); // removed with its automation
            };
            let actor = Actor::Automation(exec.automation_id);
            match exec.status.as_str() {
                automations::QUEUED => {
                    let uow = self.units.begin(Some(org), actor);
                    automations::start(&uow, org, id).await.map_err(retry)?;
                    uow.commit().await.map_err(retry)?;
                    continue;
                }
                automations::RUNNING => {}
                _ => return Ok(()), // over
            }
            let index = exec.next_step;
            // Past a wait, only the run enqueued for after it goes on (a stale
            // retry of the run before it must not cut the wait short).
            if index != from
                && index > 0
                && matches!(exec.steps.get(index - 1), Some(Step::Wait(_)))
            {
                return Ok(());
            }
            let Some(step) = exec.steps.get(index).cloned() else {
                let uow = self.units.begin(Some(org), actor);
                automations::succeed_empty(&uow, &exec)
                    .await
                    .map_err(retry)?;
                uow.commit().await.map_err(retry)?;
                return Ok(());
            };
            let started_at = Utc::now();
            let mut result = StepResult {
                index,
                kind: step.kind(),
                ok: true,
                output: Value::Null,
                error: Value::Null,
                attempts: job.attempts,
                started_at,
            };
            match &step {
                Step::Wait(seconds) => {
                    let resume_at = started_at + chrono::Duration::seconds(*seconds);
                    let uow = self.units.begin(Some(org), actor);
                    if !automations::claim_step(&uow, org, id, index)
                        .await
                        .map_err(retry)?
                    {
                        return Ok(());
                    }
                    result.output = json!({
                        "seconds": seconds,
                        "resume_at": crate::feathers::schema::format_timestamp(&resume_at),
                    });
                    automations::record_step(&uow, &exec, &result, &[], After::Next)
                        .await
                        .map_err(retry)?;
                    if index + 1 < exec.steps.len() {
                        uow.enqueue(&crate::jobs::kinds::automation_run(
                            org,
                            id,
                            index + 1,
                            resume_at,
                        ))
                        .await
                        .map_err(retry)?;
                    }
                    uow.commit().await.map_err(retry)?;
                    return Ok(());
                }
                Step::Webhook(url) => {
                    let outcome = self.webhook(&exec, url, index, job).await?;
                    self.record(&exec, actor, result, outcome).await?;
                }
                _ => {
                    // The step's writes and its result, in one unit.
                    let uow = self.units.begin(Some(org), actor.clone());
                    if !automations::claim_step(&uow, org, id, index)
                        .await
                        .map_err(retry)?
                    {
                        return Ok(());
                    }
                    match self.act(&uow, &exec, &step).await {
                        Ok(output) => {
                            result.output = output;
                            automations::record_step(&uow, &exec, &result, &[], After::Next)
                                .await
                                .map_err(retry)?;
                            uow.commit().await.map_err(retry)?;
                        }
                        Err(e) if is_rule(&e) => {
                            drop(uow); // rolls back whatever the step wrote
                            self.record(&exec, actor, result, Outcome::Failed(e.to_json()))
                                .await?;
                        }
                        Err(e) => return Err(retry(e)),
                    }
                }
            }
        }
    }

    /// Records a step's outcome (and its added steps) in a unit of its own.
    async fn record(
        &self,
        exec: &Execution,
        actor: Actor,
        mut result: StepResult,
        outcome: Outcome,
    ) -> Result<(), JobError> {
        let org = exec.organization_id;
        let uow = self.units.begin(Some(org), actor);
        if !automations::claim_step(&uow, org, exec.id, result.index)
            .await
            .map_err(retry)?
        {
            return Ok(());
        }
        let (added, after) = match outcome {
            Outcome::Done(output) => {
                result.output = output;
                (Vec::new(), After::Next)
            }
            Outcome::DoneAdding(output, added) => {
                result.output = output;
                (added, After::Next)
            }
            Outcome::Failed(error) => {
                result.ok = false;
                result.error = error.clone();
                let mut run_error = error;
                run_error["step"] = json!(result.index);
                (Vec::new(), After::Fail(run_error))
            }
        };
        automations::record_step(&uow, exec, &result, &added, after)
            .await
            .map_err(retry)?;
        uow.commit().await.map_err(retry)?;
        Ok(())
    }

    /// One domain step, as the automation, in `uow`; answers the step's output.
    async fn act(
        &self,
        uow: &UnitOfWork,
        exec: &Execution,
        step: &Step,
    ) -> crate::feathers::Result<Value> {
        let org = exec.organization_id;
        let conversation = ConversationId(exec.conversation_id);
        let patch = |p: ConversationPatch| async move {
            let changed = conversations::patch(uow, org, &[conversation], &p).await?;
            if changed.is_empty() {
                return Err(FeathersError::no_record(conversation.0));
            }
            Ok(json!({ "conversation_id": conversation.0 }))
        };
        match step {
            Step::UpdateStatus(status) => {
                patch(ConversationPatch {
                    status: Some(*status),
                    ..Default::default()
                })
                .await
            }
            Step::Assign(user) => {
                patch(ConversationPatch {
                    assigned_user_id: Some(*user),
                    ..Default::default()
                })
                .await
            }
            Step::AssignAiAssistant(assistant) => {
                patch(ConversationPatch {
                    assigned_ai_assistant_id: Some(*assistant),
                    ..Default::default()
                })
                .await
            }
            Step::Move {
                pipeline_id,
                pipeline_stage_id,
            } => {
                patch(ConversationPatch {
                    pipeline_id: Some(Some(*pipeline_id)),
                    pipeline_stage_id: pipeline_stage_id.map(Some),
                    ..Default::default()
                })
                .await
            }
            Step::AddTag(tag) => {
                let row = conversations::load(uow.conn().await?, org, conversation.0).await?;
                let added = contacts::add_tag(uow, org, ContactId(row.contact_id), *tag).await?;
                Ok(json!({ "contact_id": row.contact_id, "tag_id": tag, "added": added }))
            }
            Step::SendMessage {
                text,
                predefined_message_id,
                note,
            } => {
                let conn = uow.conn().await?;
                let row = conversations::load(conn, org, conversation.0).await?;
                let channel = Channel::from_str(&row.channel).map_err(|_| {
                    FeathersError::general(format!("unknown channel {:?}", row.channel))
                })?;
                let body = Body {
                    conversation_id: Some(row.id),
                    message_text: text.clone(),
                    message_type: note.then(|| "note".to_string()),
                    predefined_message_id: *predefined_message_id,
                    ..Default::default()
                };
                let ctx = Context {
                    channel,
                    conversation: &row,
                    sender: Sender::Automation {
                        organization_id: org,
                        id: exec.automation_id,
                    },
                    now: Utc::now(),
                    initial_status: if channel == Channel::Playground {
                        "delivered"
                    } else {
                        "queued"
                    },
                };
                let message = compose::outgoing(conn, &body, &ctx).await?;
                let id = messages::create(uow, &message).await?;
                Ok(
                    json!({ "message_id": id.0, "channel": row.channel, "message_type": message.message_type }),
                )
            }
            Step::Wait(_) | Step::Webhook(_) => Err(FeathersError::general(
                "wait and webhook steps are not domain steps",
            )),
        }
    }

    /// A webhook step: the call (outside any transaction), then what its answer adds.
    async fn webhook(
        &self,
        exec: &Execution,
        url: &str,
        index: usize,
        job: &Job,
    ) -> Result<Outcome, JobError> {
        let automation = automations::load(
            &self.units.db,
            &self.sealer,
            exec.organization_id,
            exec.automation_id,
        )
        .await
        .map_err(retry)?
        .ok_or_else(|| JobError::Fatal("the automation is gone".into()))?;
        let delivery_id = format!("exec_{}_step_{index}", exec.id);
        let body = json!({
            "execution_id": exec.id,
            "automation_id": exec.automation_id,
            "organization_id": exec.organization_id,
            "conversation_id": exec.conversation_id,
            "step_index": index,
            "initial_payload": exec.initial_payload,
            "steps_result": exec.steps_result,
        });
        let answer = match webhook::call(
            url,
            &automation.secret,
            &delivery_id,
            &body,
            self.webhook_timeout,
            self.policy,
        )
        .await
        {
            Ok(answer) => answer,
            Err(webhook::CallError::Retry(why)) if job.attempts < job.max_attempts => {
                return Err(JobError::Retry(why));
            }
            Err(webhook::CallError::Retry(why)) => {
                return Ok(Outcome::Failed(json!({
                    "name": "Unavailable", "code": 503,
                    "message": format!("the webhook failed {} times: {why}", job.attempts),
                    "data": { "rule": "webhook_retries" },
                })));
            }
            Err(webhook::CallError::Fail(error)) => return Ok(Outcome::Failed(error)),
        };
        let output = json!({ "status": answer.status, "body": answer.body });
        let Some(added) = answer.body.get("steps") else {
            return Ok(Outcome::Done(output));
        };
        let parsed = automations::parse_steps(added, index + 1, self.policy);
        let steps = match parsed {
            Ok(steps) if exec.steps.len() + steps.len() > MAX_PLAN => {
                return Ok(Outcome::Failed(
                    FeathersError::unprocessable(format!(
                        "the webhook's steps would make the run longer than {MAX_PLAN} steps"
                    ))
                    .with_data(json!({ "rule": "automation_plan_size", "max": MAX_PLAN }))
                    .to_json(),
                ));
            }
            Ok(steps) => steps,
            Err(e) => return Ok(Outcome::Failed(e.to_json())),
        };
        if let Err(e) =
            automations::check_references(&self.units.db, exec.organization_id, &steps, index + 1)
                .await
        {
            return Ok(Outcome::Failed(e.to_json()));
        }
        let mut output = output;
        output["added_steps"] = json!(steps.len());
        Ok(Outcome::DoneAdding(output, steps))
    }
}
