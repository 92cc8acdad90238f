//! The shipped classifier: it is what training on the shipped labelled set gives, every
//! label is a category of the table, and the held-out set stays apart from training.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

extern crate tongban_voice as voice;

use voice::classifier::{self, Model};

#[test]
fn the_shipped_model_is_the_training_sets() {
    let examples = classifier::read_labelled(voice::TRAINING_SET).unwrap();
    let shipped: Model = serde_json::from_str(voice::SHIPPED_MODEL).unwrap();
    // Retrain with `tongban voice train` after changing the training set or the features.
    assert!(Model::train(&examples) == shipped, "crates/voice/data/model.json is stale: run `tongban voice train`");
}

#[test]
fn labels_are_categories_and_the_held_out_set_is_apart() {
    let categories = voice::Categories::shipped().unwrap();
    let train = classifier::read_labelled(voice::TRAINING_SET).unwrap();
    let held_out = classifier::read_labelled(voice::HELD_OUT_SET).unwrap();
    for e in train.iter().chain(&held_out) {
        assert!(categories.get(e.class).is_some(), "{} is not a category", e.class);
    }
    let seen: std::collections::HashSet<&str> = train.iter().map(|e| e.text).collect();
    assert!(held_out.iter().all(|e| !seen.contains(e.text)));
    // Every category is learnt and measured.
    for c in categories.all() {
        assert!(train.iter().filter(|e| e.class == c.code).count() >= 50, "{}", c.code);
        assert!(held_out.iter().filter(|e| e.class == c.code).count() >= 15, "{}", c.code);
    }
}
