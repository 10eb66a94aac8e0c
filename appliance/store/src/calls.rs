//! Call records, their turns (with per-stage latencies) and transcripts.

use crate::{q, AgentId, CallRecordId, Result, Store, StoreError, UnixMillis, UserId};
use sqlx::Row;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Why a call ended, or why it was never taken: one value per call record, stored as its
/// `as_str` name (the names are the stored format; never rename one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// The caller hung up (their BYE or CANCEL).
    CallerHungUp,
    /// We hung up after a goodbye (the dialog ended from our side).
    Ended,
    /// The caller stayed silent through the re-prompts.
    Silence,
    /// The call reached `calls.max_duration_min`.
    MaxDuration,
    /// Abusive language: a polite goodbye and the end.
    Abuse,
    /// The person asked not to be called again (their number went on the DND list).
    DoNotCall,
    /// Handed to a person (the transfer's own outcome is kept beside).
    Transferred,
    /// A model failed and no person could take over.
    EngineFailure,
    /// The media stream stopped (the RTP session ended under the call).
    MediaLost,
    /// The daemon stopped while the call was up.
    Shutdown,
    /// The daemon died while the call was up; closed at the next start.
    Interrupted,
    /// Refused: the caller is blacklisted (603).
    Blacklisted,
    /// Refused: no agent answers the dialled number (404).
    Unrouted,
    /// Refused: the box was at its call limit (503).
    AtCapacity,
    /// Refused: the database could not decide admission (503).
    StoreError,
    /// Refused: the engines are not loaded (480).
    RuntimeUnavailable,
    /// Admitted but could not be answered (480): no port, an unusable offer, a SIP failure.
    AnswerFailed,
    /// Outbound: the person called did not take the call (busy, no answer, declined, a bad
    /// number, a trunk failure); the campaign attempt says which.
    Unanswered,
}

impl EndReason {
    pub const ALL: [EndReason; 18] = [
        EndReason::CallerHungUp,
        EndReason::Ended,
        EndReason::Silence,
        EndReason::MaxDuration,
        EndReason::Abuse,
        EndReason::DoNotCall,
        EndReason::Transferred,
        EndReason::EngineFailure,
        EndReason::MediaLost,
        EndReason::Shutdown,
        EndReason::Interrupted,
        EndReason::Blacklisted,
        EndReason::Unrouted,
        EndReason::AtCapacity,
        EndReason::StoreError,
        EndReason::RuntimeUnavailable,
        EndReason::AnswerFailed,
        EndReason::Unanswered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller_hung_up",
            EndReason::Ended => "ended",
            EndReason::Silence => "silence",
            EndReason::MaxDuration => "max_duration",
            EndReason::Abuse => "abuse",
            EndReason::DoNotCall => "do_not_call",
            EndReason::Transferred => "transferred",
            EndReason::EngineFailure => "engine_failure",
            EndReason::MediaLost => "media_lost",
            EndReason::Shutdown => "shutdown",
            EndReason::Interrupted => "interrupted",
            EndReason::Blacklisted => "blacklisted",
            EndReason::Unrouted => "unrouted",
            EndReason::AtCapacity => "at_capacity",
            EndReason::StoreError => "store_error",
            EndReason::RuntimeUnavailable => "runtime_unavailable",
            EndReason::AnswerFailed => "answer_failed",
            EndReason::Unanswered => "unanswered",
        }
    }

    /// The reason stored as `name`, if it is one.
    pub fn parse(name: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call as it is known when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub id: CallRecordId,
    pub sip_call_id: String,
    pub direction: Direction,
    pub agent_id: Option<AgentId>,
    pub from_number: String,
    pub to_number: String,
    pub started_at: UnixMillis,
    pub answered_at: Option<UnixMillis>,
    pub ended_at: Option<UnixMillis>,
    pub end_reason: Option<EndReason>,
    /// `not_asked`, `given` or `declined` once known.
    pub consent: Option<String>,
    /// The box that carried the call (its `node` setting, by default the host name).
    pub node: Option<String>,
}

/// What is known once a call has ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndOfCall {
    pub end_reason: EndReason,
    pub transfer_outcome: Option<String>,
    pub recording_path: Option<String>,
    pub summary: Option<String>,
    /// JSON extracted from the conversation (intent, callback, disposition).
    pub outcome: Option<String>,
}

impl EndOfCall {
    /// An end for `reason` with nothing else known yet.
    pub fn new(end_reason: EndReason) -> EndOfCall {
        EndOfCall {
            end_reason,
            transfer_outcome: None,
            recording_path: None,
            summary: None,
            outcome: None,
        }
    }
}

/// Where the time of one turn went, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnTimings {
    pub endpoint_ms: Option<i64>,
    pub stt_ms: Option<i64>,
    pub llm_first_token_ms: Option<i64>,
    pub tts_first_audio_ms: Option<i64>,
    pub voice_to_voice_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub seq: i64,
    pub started_at: UnixMillis,
    pub caller_text: String,
    /// What the caller actually heard: truncated when they barged in.
    pub agent_text: String,
    pub interrupted: bool,
    pub timings: TurnTimings,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speaker {
    Caller,
    Agent,
    System,
}

impl Speaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Caller => "caller",
            Speaker::Agent => "agent",
            Speaker::System => "system",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "caller" => Some(Speaker::Caller),
            "agent" => Some(Speaker::Agent),
            "system" => Some(Speaker::System),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptLine {
    pub seq: i64,
    /// Offset from the call's start.
    pub at_ms: i64,
    pub speaker: Speaker,
    pub text: String,
}

impl Store {
    /// Records a new call before it is answered, so even a failed setup leaves a trace.
    pub async fn insert_call(&self, call: &CallRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO calls (id, sip_call_id, direction, agent_id, from_number, to_number, \
             started_at, answered_at, node) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(call.id.as_str())
        .bind(&call.sip_call_id)
        .bind(call.direction.as_str())
        .bind(call.agent_id.as_ref().map(|a| a.as_str().to_string()))
        .bind(self.seal_number(&call.from_number))
        .bind(self.seal_number(&call.to_number))
        .bind(call.started_at.0)
        .bind(call.answered_at.map(|t| t.0))
        .bind(call.node.as_deref())
        .execute(&self.pool)
        .await
        .map_err(q("insert call"))?;
        Ok(())
    }

    pub async fn mark_answered(&self, call: &CallRecordId, at: UnixMillis) -> Result<()> {
        self.update_call_one(
            "mark call answered",
            sqlx::query("UPDATE calls SET answered_at = $1 WHERE id = $2")
                .bind(at.0)
                .bind(call.as_str()),
            call,
        )
        .await
    }

    /// Closes the record. Idempotent for the same call: a second end keeps the first one's data.
    pub async fn finish_call(
        &self,
        call: &CallRecordId,
        at: UnixMillis,
        end: &EndOfCall,
    ) -> Result<()> {
        self.update_call_one(
            "finish call",
            sqlx::query(
                "UPDATE calls SET ended_at = COALESCE(ended_at, $1), end_reason = COALESCE(end_reason, $2), \
                 transfer_outcome = COALESCE(transfer_outcome, $3), \
                 recording_path = COALESCE(recording_path, $4), summary = COALESCE(summary, $5), \
                 outcome = COALESCE(outcome, $6) WHERE id = $7",
            )
            .bind(at.0)
            .bind(end.end_reason.as_str())
            .bind(end.transfer_outcome.as_deref())
            .bind(end.recording_path.as_deref())
            .bind(end.summary.as_deref().map(|t| self.seal_text(t)))
            .bind(end.outcome.as_deref().map(|t| self.seal_text(t)))
            .bind(call.as_str()),
            call,
        )
        .await
    }

    /// Closes the calls `node` left open when it stopped without ending them (a crash, a power
    /// cut), and those of no node (older records): end reason `interrupted`, ended at the last
    /// transcript line heard, else when answered or started. Calls of other nodes sharing the
    /// database are still live and stay open. Returns the calls closed.
    pub async fn close_interrupted_calls(&self, node: &str) -> Result<Vec<CallRecordId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM calls WHERE ended_at IS NULL AND (node = $1 OR node IS NULL)",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(q("find interrupted calls"))?;
        for id in &ids {
            sqlx::query(
                "UPDATE calls SET end_reason = 'interrupted', ended_at = COALESCE(\
                 (SELECT MAX(calls.started_at + t.at_ms) FROM transcript_lines t \
                  WHERE t.call_id = calls.id), answered_at, started_at) \
                 WHERE id = $1 AND ended_at IS NULL",
            )
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(q("close interrupted call"))?;
        }
        Ok(ids.into_iter().map(CallRecordId::from_string).collect())
    }

    pub async fn call(&self, id: &CallRecordId) -> Result<Option<CallRecord>> {
        let row = sqlx::query(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read call"))?;
        row.as_ref().map(|r| self.call_from_row(r)).transpose()
    }

    /// Up to `limit` calls that started before `before` (all when `None`), newest first: a page
    /// of the call history; the next page starts before the last one's `started_at`. With
    /// `for_user`, only calls of the agents that user works for ([`Store::user_agents`]).
    pub async fn calls(
        &self,
        before: Option<UnixMillis>,
        limit: i64,
        for_user: Option<&UserId>,
    ) -> Result<Vec<CallRecord>> {
        let scope = if for_user.is_some() {
            "AND agent_id IN (SELECT a.id FROM agents a JOIN user_agents u \
             ON u.agent_name = a.name WHERE u.user_id = $3)"
        } else {
            ""
        };
        let query = format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE started_at < $1 {scope} \
             ORDER BY started_at DESC, id DESC LIMIT $2"
        );
        let mut query = sqlx::query(&query)
            .bind(before.map_or(i64::MAX, |t| t.0))
            .bind(limit);
        if let Some(user) = for_user {
            query = query.bind(user.as_str());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(q("list calls"))?;
        rows.iter().map(|r| self.call_from_row(r)).collect()
    }

    /// What was written when the call ended (`None` for an unknown call or one still up).
    pub async fn end_of_call(&self, id: &CallRecordId) -> Result<Option<EndOfCall>> {
        let Some(r) = sqlx::query(
            "SELECT end_reason, transfer_outcome, recording_path, summary, outcome FROM calls \
             WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read end of call"))?
        else {
            return Ok(None);
        };
        let e = || q("read end of call");
        let Some(end_reason) = r.try_get::<Option<String>, _>(0).map_err(e())? else {
            return Ok(None);
        };
        Ok(Some(EndOfCall {
            end_reason: parse_end_reason(end_reason)?,
            transfer_outcome: r.try_get(1).map_err(e())?,
            recording_path: r.try_get(2).map_err(e())?,
            summary: self.open_optional(r.try_get(3).map_err(e())?)?,
            outcome: self.open_optional(r.try_get(4).map_err(e())?)?,
        }))
    }

    /// The ids of the newest `limit` calls, newest first.
    pub async fn recent_call_ids(&self, limit: i64) -> Result<Vec<CallRecordId>> {
        sqlx::query("SELECT id FROM calls ORDER BY started_at DESC, id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list calls"))?
            .iter()
            .map(|r| {
                r.try_get::<String, _>(0)
                    .map(CallRecordId::from_string)
                    .map_err(q("list calls"))
            })
            .collect()
    }

    /// Appends a finished turn with its timings.
    pub async fn record_turn(&self, call: &CallRecordId, turn: &Turn) -> Result<()> {
        let t = &turn.timings;
        sqlx::query(
            "INSERT INTO call_turns (call_id, seq, started_at, caller_text, agent_text, interrupted, \
             endpoint_ms, stt_ms, llm_first_token_ms, tts_first_audio_ms, voice_to_voice_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(call.as_str())
        .bind(turn.seq)
        .bind(turn.started_at.0)
        .bind(self.seal_text(&turn.caller_text))
        .bind(self.seal_text(&turn.agent_text))
        .bind(i64::from(turn.interrupted))
        .bind(t.endpoint_ms)
        .bind(t.stt_ms)
        .bind(t.llm_first_token_ms)
        .bind(t.tts_first_audio_ms)
        .bind(t.voice_to_voice_ms)
        .execute(&self.pool)
        .await
        .map_err(q("record turn"))?;
        Ok(())
    }

    pub async fn turns(&self, call: &CallRecordId) -> Result<Vec<Turn>> {
        let rows = sqlx::query(
            "SELECT seq, started_at, caller_text, agent_text, interrupted, endpoint_ms, stt_ms, \
             llm_first_token_ms, tts_first_audio_ms, voice_to_voice_ms FROM call_turns \
             WHERE call_id = $1 ORDER BY seq",
        )
        .bind(call.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read turns"))?;
        let e = || q("read turns");
        rows.iter()
            .map(|r| {
                Ok(Turn {
                    seq: r.try_get(0).map_err(e())?,
                    started_at: UnixMillis(r.try_get(1).map_err(e())?),
                    caller_text: self.open_text(&r.try_get::<String, _>(2).map_err(e())?)?,
                    agent_text: self.open_text(&r.try_get::<String, _>(3).map_err(e())?)?,
                    interrupted: r.try_get::<i64, _>(4).map_err(e())? != 0,
                    timings: TurnTimings {
                        endpoint_ms: r.try_get(5).map_err(e())?,
                        stt_ms: r.try_get(6).map_err(e())?,
                        llm_first_token_ms: r.try_get(7).map_err(e())?,
                        tts_first_audio_ms: r.try_get(8).map_err(e())?,
                        voice_to_voice_ms: r.try_get(9).map_err(e())?,
                    },
                })
            })
            .collect()
    }

    pub async fn append_transcript(
        &self,
        call: &CallRecordId,
        line: &TranscriptLine,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO transcript_lines (call_id, seq, at_ms, speaker, text) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(call.as_str())
        .bind(line.seq)
        .bind(line.at_ms)
        .bind(line.speaker.as_str())
        .bind(self.seal_text(&line.text))
        .execute(&self.pool)
        .await
        .map_err(q("append transcript"))?;
        Ok(())
    }

    pub async fn transcript(&self, call: &CallRecordId) -> Result<Vec<TranscriptLine>> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, speaker, text FROM transcript_lines WHERE call_id = $1 ORDER BY seq",
        )
        .bind(call.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read transcript"))?;
        let e = || q("read transcript");
        rows.iter()
            .map(|r| {
                let speaker: String = r.try_get(2).map_err(e())?;
                Ok(TranscriptLine {
                    seq: r.try_get(0).map_err(e())?,
                    at_ms: r.try_get(1).map_err(e())?,
                    speaker: Speaker::parse(&speaker).ok_or(StoreError::Corrupt {
                        what: "speaker",
                        value: speaker,
                    })?,
                    text: self.open_text(&r.try_get::<String, _>(3).map_err(e())?)?,
                })
            })
            .collect()
    }

    async fn update_call_one<'a>(
        &self,
        op: &'static str,
        query: sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments<'a>>,
        call: &CallRecordId,
    ) -> Result<()> {
        let done = query.execute(&self.pool).await.map_err(q(op))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "call",
                key: call.to_string(),
            });
        }
        Ok(())
    }
}

const CALL_COLUMNS: &str = "id, sip_call_id, direction, agent_id, from_number, to_number, \
    started_at, answered_at, ended_at, end_reason, consent, node";

fn parse_end_reason(name: String) -> Result<EndReason> {
    EndReason::parse(&name).ok_or(StoreError::Corrupt {
        what: "end reason",
        value: name,
    })
}

impl Store {
    fn call_from_row(&self, r: &sqlx::any::AnyRow) -> Result<CallRecord> {
        let e = || q("read call");
        let direction: String = r.try_get(2).map_err(e())?;
        Ok(CallRecord {
            id: CallRecordId::from_string(r.try_get(0).map_err(e())?),
            sip_call_id: r.try_get(1).map_err(e())?,
            direction: match direction.as_str() {
                "inbound" => Direction::Inbound,
                "outbound" => Direction::Outbound,
                _ => {
                    return Err(StoreError::Corrupt {
                        what: "call direction",
                        value: direction,
                    })
                }
            },
            agent_id: r
                .try_get::<Option<String>, _>(3)
                .map_err(e())?
                .map(AgentId::from_string),
            from_number: self.open_number(&r.try_get::<String, _>(4).map_err(e())?)?,
            to_number: self.open_number(&r.try_get::<String, _>(5).map_err(e())?)?,
            started_at: UnixMillis(r.try_get(6).map_err(e())?),
            answered_at: r.try_get::<Option<i64>, _>(7).map_err(e())?.map(UnixMillis),
            ended_at: r.try_get::<Option<i64>, _>(8).map_err(e())?.map(UnixMillis),
            end_reason: r
                .try_get::<Option<String>, _>(9)
                .map_err(e())?
                .map(parse_end_reason)
                .transpose()?,
            consent: r.try_get(10).map_err(e())?,
            node: r.try_get(11).map_err(e())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_reason_reads_back_as_itself() {
        for reason in EndReason::ALL {
            assert_eq!(EndReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(EndReason::parse("caller_bye"), None);
        assert!(matches!(
            parse_end_reason("caller_bye".into()),
            Err(StoreError::Corrupt {
                what: "end reason",
                ..
            })
        ));
    }
}
