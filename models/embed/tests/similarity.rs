//! all-MiniLM-L6-v2: paraphrases score above unrelated sentences; batching changes nothing.

use models_api::testing::model_file;
use models_api::Embedder;
use models_embed::MiniLm;

#[test]
fn paraphrases_score_higher_than_unrelated_pairs() {
    let Some(dir) = model_file("all-MiniLM-L6-v2") else {
        return;
    };
    let m = MiniLm::load(&dir).unwrap();
    assert_eq!(m.dimension(), 384);
    let e = m
        .embed(&[
            "What time do you open in the morning?",
            "When does your office open?",
            "My car needs new tyres.",
        ])
        .unwrap();
    let para = e[0].cosine(&e[1]);
    let unrelated = e[0].cosine(&e[2]);
    eprintln!("paraphrase {para:.3}, unrelated {unrelated:.3}");
    assert!(para > 0.5 && unrelated < 0.25 && para > unrelated + 0.3);
    for v in &e {
        assert!((v.cosine(v) - 1.0).abs() < 1e-4, "unit length");
    }

    // A sentence alone and in a padded batch embeds the same (mean pooling ignores padding).
    let alone = m.embed(&["My car needs new tyres."]).unwrap();
    assert!(alone[0].cosine(&e[2]) > 0.9999);
    assert!(m.embed(&[]).unwrap().is_empty());
}
