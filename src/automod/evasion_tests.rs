//! The engine against evasion and against innocent words: each case is a message a
//! real spammer (or a real person from Scunthorpe) would send.

use serenity::all::{ChannelId, RoleId};
use uuid::Uuid;

use super::engine::{Message, RuleSet};
use super::normalize::Normalization;
use super::rules::{LinkMode, PhraseMode, RuleSpec, Scope, Trigger};
use super::windows::Windows;

fn rule(name: &str, trigger: Trigger) -> (Uuid, RuleSpec) {
    (Uuid::new_v4(), RuleSpec::new(name, trigger))
}

fn phrases(list: &[&str], mode: PhraseMode) -> Trigger {
    Trigger::Phrases {
        phrases: list.iter().map(|p| p.to_string()).collect(),
        mode,
        normalize: Normalization::Strict,
    }
}

fn message(content: &str) -> Message<'_> {
    Message {
        content,
        author: 7,
        channel: ChannelId::new(1),
        roles: &[],
        mentions: 0,
        attachments: &[],
        account_age_secs: None,
        member_age_secs: None,
        at_ms: 0,
    }
}

fn fired(set: &RuleSet, content: &str) -> Vec<String> {
    set.evaluate(&message(content), &Windows::default())
        .into_iter()
        .map(|h| set.rules[h.rule].spec.name.clone())
        .collect()
}

#[test]
fn evasions_of_a_banned_phrase_are_caught() {
    let set = RuleSet::compile(vec![rule(
        "nitro",
        phrases(&["free nitro"], PhraseMode::WholeWord),
    )])
    .expect("compiles");
    for variant in [
        "free nitro",
        "FREE NITRO here",
        "ｆｒｅｅ ｎｉｔｒｏ",                        // fullwidth
        "𝐟𝐫𝐞𝐞 𝐧𝐢𝐭𝐫𝐨",                                 // mathematical bold
        "𝓯𝓻𝓮𝓮 𝓷𝓲𝓽𝓻𝓸",                                 // mathematical script
        "frее nitrо",                                 // Cyrillic е and о
        "ΝΙΤRΟ",                                      // (not the phrase alone: see below)
        "f\u{200d}r\u{200b}ee n\u{2060}itro",         // zero-width characters
        "f\u{0336}r\u{0336}e\u{0336}e\u{0336} nitro", // combining strike-through
        "fr\u{0301}ee nítrö",                         // accents
        "fr33 n1tr0",                                 // leetspeak
        "f.r.e.e n.i.t.r.o",                          // separators
        "f r e e n i t r o",                          // spaced letters
        "f-r-e-e nitro!!",
        "freeeeee niiiitro", // stretched letters
        "get FR€€ nitro",    // not folded: € is no letter (expected miss below)
    ] {
        let hits = fired(&set, variant);
        match variant {
            "ΝΙΤRΟ" | "get FR€€ nitro" => assert!(hits.is_empty(), "{variant}: {hits:?}"),
            _ => assert_eq!(hits, ["nitro"], "{variant:?} should be caught"),
        }
    }
}

#[test]
fn greek_and_cyrillic_capitals_fold_to_latin() {
    let set = RuleSet::compile(vec![rule(
        "nitro",
        phrases(&["nitro"], PhraseMode::WholeWord),
    )])
    .expect("compiles");
    assert_eq!(fired(&set, "ΝΙΤRΟ"), ["nitro"]);
    assert_eq!(
        fired(&set, "НІТRО"),
        Vec::<String>::new(),
        "Cyrillic Н is an H"
    );
    assert_eq!(fired(&set, "nіtrо"), ["nitro"], "Cyrillic і and о");
}

#[test]
fn innocent_words_that_contain_banned_ones_are_not_hit() {
    let set = RuleSet::compile(vec![rule(
        "profanity",
        phrases(&["cunt", "ass", "tit", "god"], PhraseMode::WholeWord),
    )])
    .expect("compiles");
    for innocent in [
        "I live in Scunthorpe",
        "a classic film",
        "the assassin passed the bass",
        "as well as",
        "titanic constitution",
        "good morning",
        "Goodbye",
        "Essex and Sussex",
    ] {
        assert!(fired(&set, innocent).is_empty(), "{innocent:?} is innocent");
    }
    for guilty in ["you ass", "A S S", "a$$", "assss", "c.u.n.t", "goooood"] {
        assert_eq!(fired(&set, guilty), ["profanity"], "{guilty:?}");
    }
}

#[test]
fn substring_and_wildcard_modes() {
    let set = RuleSet::compile(vec![
        rule("sub", phrases(&["scam"], PhraseMode::Substring)),
        rule("prefix", phrases(&["crypto*"], PhraseMode::Wildcard)),
        rule("inner", phrases(&["free*coins"], PhraseMode::Wildcard)),
    ])
    .expect("compiles");
    assert_eq!(fired(&set, "scammers everywhere"), ["sub"]);
    assert_eq!(fired(&set, "cryptocurrency gains"), ["prefix"]);
    assert!(
        fired(&set, "nocrypto").is_empty(),
        "a prefix wildcard starts a word"
    );
    assert_eq!(fired(&set, "freeeshinycoins"), ["inner"]);
    assert!(
        fired(&set, "free coins").is_empty(),
        "inner wildcards stay in one word"
    );
}

#[test]
fn regexes_fire_and_bad_ones_are_named_with_their_position() {
    let set = RuleSet::compile(vec![(
        Uuid::new_v4(),
        RuleSpec {
            trigger: Trigger::Regex {
                patterns: vec![r"\bwin\s+\d+\s*(usd|eur)\b".into()],
                normalize: Normalization::Standard,
            },
            ..rule("prize", phrases(&["x"], PhraseMode::WholeWord)).1
        },
    )])
    .expect("compiles");
    assert_eq!(fired(&set, "WIN 500 USD now"), ["prize"]);
    assert_eq!(fired(&set, "ｗｉｎ 500 eur"), ["prize"], "fullwidth");
    assert!(fired(&set, "winner 500 usd").is_empty());

    let bad = RuleSet::compile(vec![(
        Uuid::new_v4(),
        RuleSpec {
            trigger: Trigger::Regex {
                patterns: vec!["ok".into(), "fr(ee".into()],
                normalize: Normalization::Standard,
            },
            ..rule("broken", phrases(&["x"], PhraseMode::WholeWord)).1
        },
    )])
    .expect_err("an unclosed group is refused");
    assert_eq!(bad.rule, "broken");
    assert!(
        bad.message.contains("pattern 2") && bad.message.contains("position"),
        "{bad}"
    );
}

#[test]
fn banned_domains_match_with_subdomains_and_homoglyphs() {
    let set = RuleSet::compile(vec![
        rule(
            "scams",
            Trigger::Links {
                domains: vec!["101nitro.com".into(), "steamcommunity-gift.ru".into()],
                mode: LinkMode::Block,
            },
        ),
        rule(
            "invites",
            Trigger::Invites {
                allowed_codes: vec!["rust".into()],
            },
        ),
    ])
    .expect("compiles");
    assert_eq!(
        fired(&set, "claim at https://101nitro.com/claim"),
        ["scams"]
    );
    assert_eq!(fired(&set, "gift.steamcommunity-gift.ru/x"), ["scams"]);
    assert_eq!(
        fired(&set, "101nitrо.com"),
        ["scams"],
        "Cyrillic о in the host"
    );
    assert!(fired(&set, "see https://101nitro.community").is_empty());
    assert_eq!(fired(&set, "join discord.gg/spam"), ["invites"]);
    assert!(
        fired(&set, "join discord.gg/rust").is_empty(),
        "our own invite"
    );
}

#[test]
fn allow_list_mode_fires_on_anything_else() {
    let set = RuleSet::compile(vec![rule(
        "only-docs",
        Trigger::Links {
            domains: vec!["rust-lang.org".into()],
            mode: LinkMode::Allow,
        },
    )])
    .expect("compiles");
    assert!(fired(&set, "read doc.rust-lang.org/book").is_empty());
    assert_eq!(fired(&set, "read evil.example.com"), ["only-docs"]);
}

#[test]
fn flood_and_duplicates_fire_at_their_count() {
    let set = RuleSet::compile(vec![
        rule(
            "flood",
            Trigger::Flood {
                messages: 5,
                within_secs: 10,
            },
        ),
        rule(
            "dupes",
            Trigger::Duplicates {
                count: 3,
                within_secs: 60,
            },
        ),
    ])
    .expect("compiles");
    let windows = Windows::default();
    let send = |i: u64, text: &str| -> Vec<String> {
        let mut m = message(text);
        m.at_ms = i * 1000;
        set.evaluate(&m, &windows)
            .into_iter()
            .map(|h| set.rules[h.rule].spec.name.clone())
            .collect()
    };
    assert!(send(0, "a").is_empty());
    assert!(send(1, "b").is_empty());
    assert!(send(2, "same").is_empty());
    assert!(send(3, "same").is_empty(), "4 messages, 2 duplicates");
    assert_eq!(
        send(4, "SAME"),
        ["flood", "dupes"],
        "5th message, 3rd duplicate"
    );
    assert!(send(30, "c").is_empty(), "the flood window has passed");
}

#[test]
fn exempt_roles_and_channel_limits_are_respected() {
    let mut limited = rule("limited", phrases(&["spoiler"], PhraseMode::WholeWord));
    limited.1.scope = Scope {
        channels: vec![ChannelId::new(1)],
        exempt_roles: vec![RoleId::new(99)],
        ..Scope::default()
    };
    let set = RuleSet::compile(vec![limited]).expect("compiles");
    let windows = Windows::default();
    assert_eq!(set.evaluate(&message("a spoiler"), &windows).len(), 1);
    let roles = [RoleId::new(99)];
    let exempt = Message {
        roles: &roles,
        ..message("a spoiler")
    };
    assert!(set.evaluate(&exempt, &windows).is_empty(), "exempt role");
    let elsewhere = Message {
        channel: ChannelId::new(2),
        ..message("a spoiler")
    };
    assert!(
        set.evaluate(&elsewhere, &windows).is_empty(),
        "other channel"
    );
}

#[test]
fn metadata_rules() {
    let set = RuleSet::compile(vec![
        rule(
            "caps",
            Trigger::Caps {
                min_percent: 70,
                min_letters: 10,
            },
        ),
        rule(
            "mentions",
            Trigger::MentionSpam {
                max: 4,
                within_secs: None,
            },
        ),
        rule(
            "files",
            Trigger::Attachments {
                max: Some(3),
                blocked_extensions: vec!["exe".into()],
            },
        ),
        rule(
            "fresh",
            Trigger::NewAccount {
                younger_than_secs: 86_400,
                first_message_only: true,
            },
        ),
    ])
    .expect("compiles");
    let windows = Windows::default();
    let names = |m: &Message<'_>| -> Vec<String> {
        set.evaluate(m, &windows)
            .into_iter()
            .map(|h| set.rules[h.rule].spec.name.clone())
            .collect()
    };
    assert_eq!(names(&message("STOP SHOUTING AT ME")), ["caps"]);
    assert!(names(&message("OK FINE")).is_empty(), "too short to judge");
    assert_eq!(
        names(&Message {
            mentions: 5,
            ..message("hi all")
        }),
        ["mentions"]
    );
    let files = ["free.exe".to_string()];
    assert_eq!(
        names(&Message {
            attachments: &files,
            ..message("look")
        }),
        ["files"]
    );
    let young = Message {
        account_age_secs: Some(3600),
        ..message("hello")
    };
    assert_eq!(names(&young), ["fresh"]);
    assert!(names(&young).is_empty(), "only their first message");
}

#[test]
fn disabled_rules_are_not_compiled() {
    let mut off = rule("off", phrases(&["spoiler"], PhraseMode::WholeWord));
    off.1.enabled = false;
    let set = RuleSet::compile(vec![off]).expect("compiles");
    assert!(set.is_empty());
    assert!(fired(&set, "spoiler").is_empty());
}
