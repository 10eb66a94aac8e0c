//! Qwen2.5-Coder-0.5B-Instruct (Q4_0, requantized from the Q5_0 matrices of the Q4_K_M upload), greedy unless stated.

use std::sync::OnceLock;

use models_api::testing::model_file;
use models_api::{
    CancelToken, ChatMessage, Constraint, Flow, GenerateOptions, Llm, LlmSession, Sampling,
    StopReason,
};
use models_llama::{Error, Llama, LlamaConfig, LlamaSession};

const SYSTEM: &str = "You are the phone receptionist of Acme Dental. Facts: we are open Monday to \
Friday from 9 am to 5 pm; our address is 12 Main Street; a cleaning costs 80 dollars. Answer in \
one short sentence.";

fn llama() -> Option<&'static Llama> {
    static LLAMA: OnceLock<Option<Llama>> = OnceLock::new();
    LLAMA
        .get_or_init(|| {
            let path = model_file("qwen2.5-coder-0.5b-instruct-q4_0.gguf")?;
            let config = LlamaConfig {
                n_ctx: 2048,
                ..LlamaConfig::new(path)
            };
            Some(Llama::load(&config).expect("load the Qwen GGUF"))
        })
        .as_ref()
}

fn reply(session: &mut LlamaSession, max_tokens: u32) -> String {
    let options = GenerateOptions {
        max_tokens,
        ..GenerateOptions::default()
    };
    let g = session
        .generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
        .expect("generate");
    g.text
}

#[test]
fn answers_from_facts_in_its_prompt() {
    let Some(llm) = llama() else { return };
    let prefix = llm.prefix(SYSTEM).unwrap();
    let mut s = llm.session(Some(&prefix)).unwrap();
    s.push(ChatMessage::user("What is your address?"));
    let mut streamed = String::new();
    let g = s
        .generate(
            &GenerateOptions {
                max_tokens: 40,
                ..Default::default()
            },
            &CancelToken::new(),
            &mut |t| {
                streamed.push_str(t);
                Flow::Continue
            },
        )
        .unwrap();
    eprintln!("{:?} {g:?}", g.text);
    assert!(g.text.contains("12 Main"), "{:?}", g.text);
    assert_eq!(streamed, g.text, "the stream is the reply");
    assert_eq!(g.stop, StopReason::EndOfTurn);
    assert!(
        g.cached_tokens as usize >= prefix.token_count(),
        "the prefix came from the snapshot"
    );
    assert!(
        g.prefilled_tokens < 20,
        "only the user's turn was prefilled: {}",
        g.prefilled_tokens
    );
    assert_eq!(
        s.history().last(),
        Some(&ChatMessage::assistant(g.text.clone()))
    );
}

#[test]
fn continuing_on_the_cache_matches_a_cold_prefill() {
    let Some(llm) = llama() else { return };
    let prefix = llm.prefix(SYSTEM).unwrap();
    let mut warm = llm.session(Some(&prefix)).unwrap();
    warm.push(ChatMessage::user("When are you open?"));
    let first = reply(&mut warm, 24);
    warm.push(ChatMessage::user("And how much is a cleaning?"));
    let options = GenerateOptions {
        max_tokens: 24,
        ..Default::default()
    };
    let second = warm
        .generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
        .expect("generate");
    assert!(
        second.cached_tokens > second.prefilled_tokens * 4,
        "{second:?}"
    );

    let mut cold = llm.session(None).unwrap();
    for m in &warm.history()[..warm.history().len() - 1] {
        cold.push(m.clone());
    }
    assert_eq!(cold.cached_tokens(), 0);
    let again = cold
        .generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
        .expect("generate");
    eprintln!(
        "first {first:?}; warm {:?}; cold {:?}",
        second.text, again.text
    );
    assert_eq!(again.cached_tokens, 0);
    assert_eq!(second.text, again.text);
}

#[test]
fn replies_decoded_together_are_the_replies_each_gets_alone() {
    let Some(path) = model_file("qwen2.5-coder-0.5b-instruct-q4_0.gguf") else {
        return;
    };
    // A model of its own: the other tests' sessions must not share its steps.
    let llm = Llama::load(&LlamaConfig {
        n_ctx: 1024,
        sequences: 4,
        ..LlamaConfig::new(path)
    })
    .expect("load the Qwen GGUF");
    let prefix = llm.prefix(SYSTEM).unwrap();
    let questions = [
        "When are you open?",
        "What is your address, and is there parking nearby?",
        "How much is a cleaning?",
        "Do you see children, and can my two kids come on the same day as me?",
    ];
    let session = |question: &str| {
        let mut s = llm.session(Some(&prefix)).unwrap();
        s.push(ChatMessage::user(question));
        s
    };
    let alone: Vec<String> = questions
        .iter()
        .map(|q| reply(&mut session(q), 40))
        .collect();
    let before = llm.decoded();
    assert_eq!(
        before.shared_tokens, 0,
        "one session at a time shares nothing"
    );

    let start = std::sync::Barrier::new(questions.len());
    let together: Vec<String> = std::thread::scope(|scope| {
        let callers: Vec<_> = questions
            .iter()
            .map(|q| {
                let (start, session) = (&start, &session);
                scope.spawn(move || {
                    let mut s = session(q);
                    start.wait();
                    reply(&mut s, 40)
                })
            })
            .collect();
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let after = llm.decoded();
    eprintln!("alone {alone:?}\ntogether {together:?}\n{before:?} → {after:?}");
    assert_eq!(
        together, alone,
        "greedy replies do not depend on who else is decoding"
    );
    let (steps, tokens) = (after.steps - before.steps, after.tokens - before.tokens);
    assert!(
        after.shared_tokens > before.shared_tokens && steps < tokens / 2,
        "four replies at once share decode steps: {steps} steps for {tokens} tokens"
    );
}

#[test]
fn cancelling_mid_reply_leaves_a_usable_consistent_session() {
    let Some(llm) = llama() else { return };
    let prefix = llm.prefix(SYSTEM).unwrap();
    let mut s = llm.session(Some(&prefix)).unwrap();
    s.push(ChatMessage::user(
        "Tell me everything about your opening hours and address.",
    ));
    let cancel = CancelToken::new();
    let mut pieces = 0;
    let g = s
        .generate(&GenerateOptions::default(), &cancel, &mut |_| {
            pieces += 1;
            if pieces == 3 {
                cancel.cancel(); // barge-in
            }
            Flow::Continue
        })
        .unwrap();
    assert_eq!(g.stop, StopReason::Cancelled);
    assert!(g.generated_tokens >= 3 && g.generated_tokens <= 4, "{g:?}");
    assert_eq!(s.history().last().unwrap().content, g.text);
    // The cache holds the prompt plus the decoded reply tokens, nothing after.
    assert!(
        s.cached_tokens() <= (g.cached_tokens + g.prefilled_tokens + g.generated_tokens) as usize
    );

    // What the caller heard is less than what was generated.
    assert!(s.truncate_reply(g.text.split_whitespace().next().unwrap()));
    s.push(ChatMessage::user("What is your address?"));
    let options = GenerateOptions {
        max_tokens: 30,
        ..Default::default()
    };
    let next = s
        .generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
        .expect("generate");
    assert!(next.text.contains("12 Main"), "{:?}", next.text);

    let mut cold = llm.session(None).unwrap();
    for m in &s.history()[..s.history().len() - 1] {
        cold.push(m.clone());
    }
    let again = cold
        .generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
        .expect("generate");
    assert_eq!(
        next.text, again.text,
        "the cache after cancel + edit matches a cold prefill"
    );
}

#[test]
fn callback_stop_and_stop_strings_end_the_reply() {
    let Some(llm) = llama() else { return };
    let mut s = llm.session(None).unwrap();
    s.push(ChatMessage::system(SYSTEM));
    s.push(ChatMessage::user(
        "Count from one to ten in words, separated by commas.",
    ));
    let options = GenerateOptions {
        stop: vec!["five".into()],
        max_tokens: 60,
        ..Default::default()
    };
    let g = s
        .generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
        .expect("generate");
    eprintln!("{g:?}");
    if g.stop == StopReason::StopSequence {
        assert!(
            !g.text.contains("five") && g.text.contains("four"),
            "{:?}",
            g.text
        );
    }
    let mut n = 0;
    s.push(ChatMessage::user("Again please."));
    let g = s
        .generate(
            &GenerateOptions::default(),
            &CancelToken::new(),
            &mut |_| {
                n += 1;
                if n == 2 {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            },
        )
        .unwrap();
    assert_eq!(g.stop, StopReason::Callback);
    assert_eq!(g.generated_tokens, 2);
}

#[test]
fn json_constraint_yields_parseable_json() {
    let Some(llm) = llama() else { return };
    let mut s = llm.session(None).unwrap();
    s.push(ChatMessage::system(
        "Extract the caller's intent as JSON with keys \"intent\" (book, cancel or question), \
         \"day\" and \"time\".",
    ));
    s.push(ChatMessage::user(
        "Hi, I need to cancel my appointment on Thursday at ten thirty.",
    ));
    let options = GenerateOptions {
        constraint: Constraint::JsonObject,
        max_tokens: 60,
        ..Default::default()
    };
    let g = s
        .generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
        .expect("generate");
    eprintln!("{:?}", g.text);
    let v: serde_json::Value =
        serde_json::from_str(&g.text).expect("grammar-constrained JSON parses");
    assert_eq!(v["intent"], "cancel", "{v}");
    assert!(
        v["day"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("thursday"),
        "{v}"
    );
}

#[test]
fn gbnf_constraint_restricts_the_answer() {
    let Some(llm) = llama() else { return };
    let mut s = llm.session(None).unwrap();
    s.push(ChatMessage::user("Is the sky blue? Answer yes or no."));
    let grammar = Constraint::Gbnf {
        grammar: r#"root ::= "yes" | "no""#.into(),
        root: "root".into(),
    };
    let g = s
        .generate(
            &GenerateOptions {
                constraint: grammar,
                ..Default::default()
            },
            &CancelToken::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap();
    assert!(g.text == "yes" || g.text == "no", "{:?}", g.text);
    let bad = Constraint::Gbnf {
        grammar: "root ::= (".into(),
        root: "root".into(),
    };
    let err = s.generate(
        &GenerateOptions {
            constraint: bad,
            ..Default::default()
        },
        &CancelToken::new(),
        &mut |_| Flow::Continue,
    );
    assert!(matches!(err, Err(Error::Grammar(_))), "{err:?}");
}

#[test]
fn seeded_sampling_is_reproducible() {
    let Some(llm) = llama() else { return };
    let run = |seed| {
        let mut s = llm.session(None).unwrap();
        s.push(ChatMessage::user("Suggest a name for a dental clinic."));
        let sampling = Sampling::Seeded {
            seed,
            temperature: 0.9,
            top_k: 40,
            top_p: 0.95,
        };
        let options = GenerateOptions {
            sampling,
            max_tokens: 16,
            ..Default::default()
        };
        s.generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
            .unwrap()
            .text
    };
    assert_eq!(run(7), run(7));
}

#[test]
fn speculative_prefill_leaves_only_sampling_for_generate() {
    let Some(llm) = llama() else { return };
    let prefix = llm.prefix(SYSTEM).unwrap();
    let mut s = llm.session(Some(&prefix)).unwrap();
    s.push(ChatMessage::user("Where are you"));
    let decoded = s.prefill(&CancelToken::new()).unwrap();
    assert!(decoded > 0);
    // The final transcript differs from the partial one: only the tail is redone.
    s.pop();
    s.push(ChatMessage::user("Where are you located?"));
    let g = s
        .generate(
            &GenerateOptions {
                max_tokens: 30,
                ..Default::default()
            },
            &CancelToken::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap();
    assert!(g.prefilled_tokens <= 8, "{g:?}");
    assert!(g.text.contains("12 Main"), "{:?}", g.text);
}

#[test]
fn bad_model_files_are_named() {
    let err = Llama::load(&LlamaConfig::new("/nonexistent/model.gguf")).unwrap_err();
    assert!(
        matches!(err, Error::ModelUnreadable { .. })
            && err.to_string().contains("/nonexistent/model.gguf")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gguf");
    std::fs::write(&path, b"lmgg-not-gguf").unwrap();
    let err = Llama::load(&LlamaConfig::new(&path)).unwrap_err();
    assert!(matches!(err, Error::ModelCorrupt { .. }), "{err}");
    std::fs::write(&path, b"GGUF\x03\0\0\0truncated").unwrap();
    let err = Llama::load(&LlamaConfig::new(&path)).unwrap_err();
    assert!(
        matches!(err, Error::ModelCorrupt { .. }) && err.to_string().contains("bad.gguf"),
        "{err}"
    );
}
