//! What the call leaves behind: transcript lines, turns, the consent log, the blacklist, the
//! transfer's outcome and the closed record with its summary.

use super::*;

impl<M: Models> Call<M> {
    pub(super) async fn log_consent(
        &mut self,
        now: Instant,
        answer_text: String,
        decision: Answer,
    ) {
        let record = ConsentRecord {
            call_id: self.id.clone(),
            caller_number: self.caller.number.clone(),
            question: prompts::text(Prompt::ConsentQuestion, "").to_owned(),
            answer_text,
            decision: match decision {
                Answer::Yes => ConsentDecision::Yes,
                Answer::No => ConsentDecision::No,
                Answer::Unclear => ConsentDecision::Unclear,
            },
            decided_at: UnixMillis::now(),
        };
        // The decision must be stored before the call moves on; a store that stays down
        // ends the conversation with the fallback line rather than going on unlogged.
        for attempt in 1..=3 {
            match self.shared.store.record_consent(&record).await {
                Ok(()) => {
                    tracing::info!(decision = ?record.decision, "consent logged");
                    return self.inputs.push_back((now, Input::ConsentLogged));
                }
                Err(e) => {
                    tracing::error!(attempt, "cannot log the consent decision: {e}");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
            }
        }
        self.inputs.push_back((super::now(), Input::EngineFailed));
    }

    pub(super) async fn blacklist(&mut self, reason: String) {
        if !self.caller.verified {
            // A From anyone can write: blocking it could block someone else's number.
            tracing::warn!(caller = %Pii(&self.caller.number), %reason,
                "abusive caller not blacklisted: the number is not asserted by a trusted source");
            return;
        }
        let blocked = self
            .shared
            .store
            .block_for_abuse(
                &self.caller.number,
                &reason,
                &self.id,
                &format!("agent:{}", self.agent.name),
                UnixMillis::now(),
                self.shared.abuse_block,
            )
            .await;
        match blocked {
            Ok(entry) => tracing::warn!(caller = %Pii(&self.caller.number), %reason,
                offences = entry.offences, until = ?entry.expires_at, "caller blacklisted"),
            Err(e) => tracing::error!("cannot blacklist the caller: {e}"),
        }
    }

    /// The person asked not to be called again. Only a number we dialled or a trusted source
    /// asserted goes on the list: anyone could otherwise have someone else's number dropped.
    pub(super) async fn do_not_call(&mut self) {
        if !self.caller.verified {
            tracing::warn!(caller = %Pii(&self.caller.number),
                "asked not to be called again, but the number is not asserted by a trusted source: not added to the DND list");
            return;
        }
        let source = format!("asked on call {}", self.id);
        let actor = format!("agent:{}", self.agent.name);
        match self
            .shared
            .store
            .add_to_dnd(&self.caller.number, &source, &actor)
            .await
        {
            Ok(()) => {
                tracing::info!(caller = %Pii(&self.caller.number), "added to the DND list at the caller's request")
            }
            Err(switchboard_store::StoreError::Conflict { .. }) => {}
            Err(e) => tracing::error!("cannot add the number to the DND list: {e}"),
        }
    }

    pub(super) async fn transfer(&mut self, now: Instant) {
        let Some(target) = self.agent.transfer_to.clone() else {
            return self.inputs.push_back((now, Input::TransferFailed));
        };
        tracing::info!(%target, "transferring (REFER)");
        if let Err(e) = self.shared.sip.refer(self.call, target).await {
            tracing::warn!("REFER could not be sent: {e}");
            self.transfer_outcome = Some(format!("failed ({e})"));
            self.inputs.push_back((now, Input::TransferFailed));
        }
    }

    pub(super) async fn line(&mut self, speaker: Speaker, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        self.lines += 1;
        let line = TranscriptLine {
            seq: self.lines,
            at_ms: UnixMillis::now().0,
            speaker,
            text: text.to_owned(),
        };
        if let Err(e) = self.shared.store.append_transcript(&self.id, &line).await {
            tracing::error!("cannot store a transcript line: {e}");
        }
    }

    pub(super) async fn record_turn(
        &mut self,
        turn: TurnInProgress,
        heard: &str,
        interrupted: bool,
    ) {
        self.line(Speaker::Agent, heard).await;
        self.turns += 1;
        let ms = |a: Option<Instant>, b: Instant| {
            a.map(|a| a.saturating_duration_since(b).as_millis() as i64)
        };
        let timings = TurnTimings {
            endpoint_ms: Some(turn.endpoint_ms),
            stt_ms: Some(turn.stt_ms),
            llm_first_token_ms: ms(turn.first_chunk, turn.asked_llm),
            tts_first_audio_ms: turn.first_chunk.and_then(|c| ms(turn.first_audio, c)),
            voice_to_voice_ms: ms(turn.first_audio, turn.end_of_speech),
        };
        tracing::info!(?timings, interrupted, "turn");
        let record = Turn {
            seq: self.turns,
            started_at: turn.started_at,
            caller_text: turn.caller_text,
            agent_text: heard.to_owned(),
            interrupted,
            timings,
        };
        if let Err(e) = self.shared.store.record_turn(&self.id, &record).await {
            tracing::error!("cannot store the turn: {e}");
        }
    }

    /// After the last word: seal the recording, extract the outcome, close the record.
    pub(super) async fn finish(mut self, media: RtpSession) {
        if let Playing::Reply(turn) = &self.playing {
            turn.cancel.cancel();
        }
        count_media(media);
        let recording = match self.recorder.take() {
            Some(rec) => {
                let path = rec.path().to_owned();
                match tokio::task::spawn_blocking(move || rec.finish()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!("the recording is incomplete: {e}"),
                    Err(e) => tracing::error!("recording task failed: {e}"),
                }
                // Even an incomplete file holds the call until the failure, so it is listed.
                path.exists().then(|| path.display().to_string())
            }
            None => None,
        };
        let reason = self.end_reason.unwrap_or(EndReason::Ended);
        tracing::info!(%reason, turns = self.turns, "call ended");
        let transfer = self.transfer_outcome.take();
        finish_record(&self.shared, &self.id, reason, transfer, recording, None).await;
        // The summary comes after the record is closed: it takes seconds of LLM time, and the
        // call's slot stays taken meanwhile because that time is this call's.
        let outcome = match (self.conversation.as_mut(), self.turns) {
            (Some(dialogue), 1..) => outcome(dialogue.lease()).await,
            _ => None,
        };
        if let Some(o) = outcome {
            self.shared
                .remember(&self.agent, &self.caller, &self.id, &o)
                .await;
            finish_record(&self.shared, &self.id, reason, None, None, Some(o)).await;
        }
    }
}

/// The LLM's end-of-call summary.
async fn outcome<M: Models>(mut lease: Lease<M>) -> Option<switchboard_agent::Outcome> {
    let cancel = CancelToken::new();
    let job = tokio::task::spawn_blocking({
        let cancel = cancel.clone();
        move || {
            // Nobody is on the line waiting for it.
            let _background = compute::background();
            lease.lock().outcome(&cancel)
        }
    });
    match tokio::time::timeout(OUTCOME_TIMEOUT, job).await {
        Ok(Ok(Ok(outcome))) => Some(outcome),
        Ok(Ok(Err(e))) => {
            tracing::warn!("no outcome extracted: {e}");
            None
        }
        Ok(Err(e)) => {
            tracing::error!("outcome extraction crashed: {e}");
            None
        }
        Err(_) => {
            cancel.cancel();
            tracing::warn!("outcome extraction timed out");
            None
        }
    }
}

/// The LLM's end-of-call summary may take this long before the record is closed without it.
const OUTCOME_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) async fn finish_record<M: Models>(
    shared: &Shared<M>,
    id: &CallRecordId,
    reason: EndReason,
    transfer_outcome: Option<String>,
    recording_path: Option<String>,
    outcome: Option<switchboard_agent::Outcome>,
) {
    let end = EndOfCall {
        end_reason: reason,
        transfer_outcome,
        recording_path,
        summary: outcome.as_ref().map(|o| o.summary.clone()),
        outcome: outcome.and_then(|o| serde_json::to_string(&o).ok()),
    };
    if let Err(e) = shared.store.finish_call(id, UnixMillis::now(), &end).await {
        tracing::error!("cannot close the call record: {e}");
    }
}

/// The record's end reason for the one the call session decided.
pub(super) fn record_end(reason: switchboard_call::EndReason) -> EndReason {
    use switchboard_call::EndReason as Session;
    match reason {
        Session::CallerHungUp => EndReason::CallerHungUp,
        Session::Silence => EndReason::Silence,
        Session::MaxDuration => EndReason::MaxDuration,
        Session::Abuse => EndReason::Abuse,
        Session::Transferred => EndReason::Transferred,
        Session::EngineFailure => EndReason::EngineFailure,
        Session::DoNotCall => EndReason::DoNotCall,
    }
}

/// Adds the call's media counters to the box's once its RTP task has ended (when the call's last
/// handle on it is dropped).
fn count_media(media: RtpSession) {
    let RtpSession { task, .. } = media;
    tokio::spawn(async move {
        if let Ok(stats) = task.await {
            metrics::counter!("switchboard_rtp_packets_refused_total")
                .increment(stats.packets_refused);
            metrics::counter!("switchboard_rtp_packets_unauthenticated_total")
                .increment(stats.packets_unauthenticated);
            metrics::counter!("switchboard_rtp_frames_concealed_total")
                .increment(stats.frames_concealed);
        }
    });
}
