//! Generated display names for new anonymous users: "Adjective Animal", like the peers do.

use lockstep_core::names::DisplayName;
use rand::Rng;
use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "Amber", "Brave", "Bright", "Calm", "Clever", "Cosy", "Curious", "Dapper", "Eager", "Fancy",
    "Gentle", "Glad", "Golden", "Happy", "Jolly", "Kind", "Lively", "Lucky", "Merry", "Mighty",
    "Nimble", "Patient", "Plucky", "Polite", "Quick", "Quiet", "Rapid", "Rosy", "Silver", "Sleepy",
    "Snappy", "Sunny", "Swift", "Tidy", "Witty", "Zesty",
];

const ANIMALS: &[&str] = &[
    "Badger", "Beaver", "Bison", "Crane", "Dolphin", "Falcon", "Ferret", "Finch", "Fox", "Gecko",
    "Heron", "Ibex", "Koala", "Lemur", "Lynx", "Marten", "Moose", "Narwhal", "Ocelot", "Otter",
    "Owl", "Panda", "Puffin", "Quokka", "Raven", "Seal", "Sloth", "Stoat", "Tapir", "Tiger",
    "Walrus", "Wombat", "Yak", "Zebra",
];

/// A random name such as "Curious Otter".
pub fn random_name(rng: &mut impl Rng) -> DisplayName {
    let adjective = ADJECTIVES.choose(rng).copied().unwrap_or("Friendly");
    let animal = ANIMALS.choose(rng).copied().unwrap_or("Viewer");
    DisplayName::parse(&format!("{adjective} {animal}"))
        .expect("every combination of the word lists is a valid name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_is_valid() {
        for a in ADJECTIVES {
            for b in ANIMALS {
                assert!(DisplayName::parse(&format!("{a} {b}")).is_ok());
            }
        }
        let _ = random_name(&mut rand::rng());
    }
}
