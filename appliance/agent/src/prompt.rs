//! The words the model is given: the agent's system prompt with the phone rules, and the notes
//! inserted during a call (retrieved facts, caller memory, the outcome request).

use crate::AgentSpec;

/// How the knowledge reaches the model, for the system prompt's wording.
pub(crate) enum Facts<'a> {
    /// No knowledge: every business question is one the agent cannot answer.
    None,
    /// The whole knowledge, cached in the prefix.
    Inline(&'a str),
    /// Retrieved per turn into a note before the caller's words.
    PerTurn,
}

/// The agent's system prompt: its own instructions, the phone rules, and the knowledge when it
/// is cached. Rendered once per agent and prefilled into the prefix.
pub(crate) fn system_prompt(spec: &AgentSpec, facts: Facts<'_>) -> String {
    let mut p = String::new();
    p.push_str(spec.prompt.trim());
    p.push('\n');
    // Facts first, rules last: the rules are what a small model must still see when it answers.
    match facts {
        Facts::None => p.push_str("\nYou have no business facts.\n"),
        Facts::Inline(knowledge) => {
            p.push_str("\nBusiness facts:\n");
            p.push_str(knowledge.trim());
            p.push('\n');
        }
        Facts::PerTurn => p.push_str(
            "\nThe business facts for each question come in a note just before the caller's words.\n",
        ),
    }
    let offer = if spec.can_transfer {
        "offer to transfer the caller to a colleague or to take a message for a callback"
    } else {
        "offer to take a message so a colleague can call back"
    };
    p.push_str(&format!(
        "\nYou are on a phone call. Answer the caller from the business facts in one or two short \
         spoken sentences, without lists or markdown. Never invent prices, opening hours, policies \
         or names that are not in the facts. Only if the facts do not contain the answer, say that \
         you don't know and {offer}.\n"
    ));
    if !spec.language.is_empty() && !spec.language.eq_ignore_ascii_case("en") {
        p.push_str(&format!(
            "Always reply in the caller's language (language code {}).\n",
            spec.language
        ));
    }
    p
}

/// The note carrying retrieved snippets for one turn.
pub(crate) fn facts_note(snippets: &[kb::Snippet]) -> String {
    let mut note = String::from("Business facts for the next question:\n");
    for s in snippets {
        note.push_str(&fact_line(s));
    }
    note
}

/// One snippet's line in a facts note.
pub(crate) fn fact_line(s: &kb::Snippet) -> String {
    let mut line = String::from("- ");
    if !s.heading_path.is_empty() {
        line.push_str(&s.heading_path);
        line.push_str(": ");
    }
    line.push_str(&s.text.split_whitespace().collect::<Vec<_>>().join(" "));
    line.push('\n');
    line
}

/// What the agent says to a question its knowledge does not cover.
pub(crate) fn dont_know_line(spec: &AgentSpec) -> String {
    format!("I'm sorry, I don't know that. {}?", colleague_offer(spec))
}

/// What the agent says when its reply was stopped mid-way by the grounding check.
pub(crate) fn unsure_line(spec: &AgentSpec) -> String {
    format!(
        "Sorry, I don't have that detail. {} to confirm it?",
        colleague_offer(spec)
    )
}

/// The offer after a don't-know, without its question mark.
fn colleague_offer(spec: &AgentSpec) -> &'static str {
    if spec.can_transfer {
        "Shall I transfer you to a colleague"
    } else {
        "Shall I ask a colleague to call you back"
    }
}

/// The note when retrieval found nothing relevant (a speculative prefill's turn).
pub(crate) fn no_facts_note(spec: &AgentSpec) -> String {
    format!(
        "The business facts say nothing about what the caller just said. If the caller asked a \
         question, reply only: \"{}\" Otherwise reply normally.",
        dont_know_line(spec)
    )
}

/// The note carrying what earlier calls from this number left behind. Plain context: a question
/// about the earlier call is answered by code ([`recall_line`]), and an instruction here was read
/// out by the small model ("…if the caller asks about their previous call, answer…").
pub(crate) fn memory_note(memory: &str) -> String {
    format!("Notes from this caller's previous call: {}", memory.trim())
}

/// The answer to "what did I call about last time?", read from memory rather than left to the
/// model: the small model answered "You called about the previous call."
pub(crate) fn recall_line(memory: &str) -> String {
    let memory = memory.trim();
    let end = if memory.ends_with(['.', '!', '?']) {
        ""
    } else {
        "."
    };
    format!("My notes from your last call say: {memory}{end}")
}

/// The end-of-call request for the outcome object.
pub(crate) const OUTCOME_REQUEST: &str = "The call is over. Write the call record as JSON: \
\"summary\" (one sentence in the third person, like \"The caller asked about … and …\"), \"intent\" (a few words), \
\"callback_requested\" (true only if the caller asked to be called back), \"disposition\" \
(resolved, transferred, callback or unresolved) and \"caller_name\" (the name the caller gave, or \
null).";
