//! The channel rules, case by case.

use super::*;
use chrono::TimeZone;
use serde_json::json;

/// A fixed "now" for every test.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 1, 0).unwrap()
}

fn ago(minutes: i64) -> DateTime<Utc> {
    now() - TimeDelta::minutes(minutes)
}

/// Well inside every window.
fn recent() -> DateTime<Utc> {
    ago(5)
}

const HOUR: i64 = 60;
const DAY: i64 = 24 * HOUR;

fn check(channel: Channel, msg: OutgoingCheck<'_>) -> Result<(), RuleViolation> {
    check_outgoing(channel, &msg, now())
}

fn text_msg(text: &str) -> OutgoingCheck<'_> {
    OutgoingCheck::new(MessageType::Text)
        .with_text(text)
        .with_last_inbound_at(recent())
}

fn media_msg<'a>(rule: &MediaRule, mime: &'a str, size: u64) -> OutgoingCheck<'a> {
    OutgoingCheck::new(rule.message_type)
        .with_media(mime, size)
        .with_last_inbound_at(recent())
}

fn text_limit(channel: Channel) -> TextLimit {
    channel
        .rules()
        .text_limit
        .expect("every channel has a text limit")
}

/// A string of exactly `n` units, made of multi-byte characters where the
/// unit allows, so that char and byte counting differ.
fn multibyte_of_len(unit: TextUnit, n: usize) -> String {
    match unit {
        TextUnit::Chars => "é".repeat(n),
        TextUnit::Bytes => format!("{}{}", "é".repeat(n / 2), "a".repeat(n % 2)),
    }
}

// ----- the tables themselves -------------------------------------------------

/// The numbers from apex/NOTES.md section 13, written out once more so a change
/// to a table is a deliberate change to this test too.
#[test]
fn tables_hold_the_documented_limits() {
    let summary = |c: Channel| {
        let r = c.rules();
        let t = r.text_limit.unwrap();
        let media: Vec<(&str, u64)> = r
            .media
            .iter()
            .map(|m| (m.message_type.as_str(), m.max_bytes))
            .collect();
        (
            t.max,
            t.unit,
            media,
            r.window.map(|w| w.hours),
            r.human_agent().map(|h| (h.tag, h.hours)),
            r.templates,
        )
    };
    use TextUnit::*;
    assert_eq!(
        summary(Channel::Whatsapp),
        (
            4_096,
            Chars,
            vec![
                ("image", 5_000_000),
                ("video", 16_000_000),
                ("audio", 16_000_000),
                ("document", 100_000_000)
            ],
            Some(24),
            None,
            true
        )
    );
    assert_eq!(
        summary(Channel::Instagram),
        (
            1_000,
            Bytes,
            vec![
                ("image", 8_000_000),
                ("audio", 25_000_000),
                ("video", 25_000_000),
                ("document", 25_000_000)
            ],
            Some(24),
            Some(("HUMAN_AGENT", 168)),
            false
        )
    );
    assert_eq!(
        summary(Channel::Messenger),
        (
            2_000,
            Chars,
            vec![
                ("image", 8_000_000),
                ("video", 25_000_000),
                ("audio", 25_000_000),
                ("document", 25_000_000)
            ],
            Some(24),
            Some(("HUMAN_AGENT", 168)),
            false
        )
    );
    assert_eq!(
        summary(Channel::Sms),
        (
            1_600,
            Chars,
            vec![
                ("image", 5_000_000),
                ("video", 5_000_000),
                ("audio", 5_000_000)
            ],
            None,
            None,
            false
        )
    );
    let web = (
        10_000,
        Chars,
        vec![
            ("image", 25_000_000),
            ("video", 25_000_000),
            ("audio", 25_000_000),
            ("document", 25_000_000),
        ],
        None,
        None,
        false,
    );
    assert_eq!(summary(Channel::Webchat), web);
    assert_eq!(summary(Channel::Playground), web);
    assert_eq!(Channel::Webchat.rules(), Channel::Playground.rules());
}

#[test]
fn tables_hold_the_documented_mime_types() {
    let mimes = |c: Channel, t: MessageType| c.rules().media_rule(t).unwrap().mime_types;
    assert_eq!(
        mimes(Channel::Whatsapp, MessageType::Image),
        ["image/jpeg", "image/png"]
    );
    assert_eq!(
        mimes(Channel::Whatsapp, MessageType::Video),
        ["video/mp4", "video/3gpp"]
    );
    assert_eq!(
        mimes(Channel::Whatsapp, MessageType::Audio),
        [
            "audio/aac",
            "audio/amr",
            "audio/mpeg",
            "audio/mp4",
            "audio/ogg"
        ]
    );
    for doc in [
        "application/pdf",
        "text/plain",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ] {
        assert!(mimes(Channel::Whatsapp, MessageType::Document).contains(&doc));
    }
    assert_eq!(
        mimes(Channel::Instagram, MessageType::Image),
        ["image/png", "image/jpeg", "image/gif"]
    );
    assert_eq!(
        mimes(Channel::Instagram, MessageType::Audio),
        ["audio/aac", "audio/mp4", "audio/wav"]
    );
    assert_eq!(
        mimes(Channel::Instagram, MessageType::Video),
        [
            "video/mp4",
            "video/ogg",
            "video/x-msvideo",
            "video/quicktime",
            "video/webm"
        ]
    );
    assert_eq!(
        mimes(Channel::Instagram, MessageType::Document),
        ["application/pdf"]
    );
    assert_eq!(
        mimes(Channel::Sms, MessageType::Image),
        ["image/jpeg", "image/png", "image/gif"]
    );
    assert_eq!(mimes(Channel::Sms, MessageType::Video), ["video/mp4"]);
    assert_eq!(
        mimes(Channel::Sms, MessageType::Audio),
        ["audio/mpeg", "audio/mp4"]
    );
    assert!(
        Channel::Sms
            .rules()
            .media_rule(MessageType::Document)
            .is_none()
    );
}

#[test]
fn tables_are_well_formed() {
    for c in Channel::ALL {
        let r = c.rules();
        let mut seen = Vec::new();
        for m in r.media {
            assert!(m.message_type.is_media(), "{c}: {:?}", m.message_type);
            assert!(!seen.contains(&m.message_type), "{c}: duplicate rule");
            seen.push(m.message_type);
            assert!(m.max_bytes > 0 && m.max_bytes % MB == 0, "{c}: sizes in MB");
            assert!(!m.mime_types.is_empty());
            for mime in m.mime_types {
                // Spelled as normalize_mime leaves it, or the type could never match.
                assert_eq!(normalize_mime(mime), *mime, "{c}: {mime}");
                assert!(mime.contains('/'), "{c}: {mime}");
            }
        }
        if let Some(w) = r.window {
            assert_eq!(w.hours, 24, "{c}");
            if let Some(h) = w.human_agent {
                assert_eq!((h.tag, h.hours), ("HUMAN_AGENT", 7 * 24), "{c}");
            }
        }
    }
    assert_eq!(channels_where(|r| r.templates), ["whatsapp"]);
    assert_eq!(
        channels_where(|r| r.human_agent().is_some()),
        ["instagram", "messenger"]
    );
    assert_eq!(
        channels_where(|r| r.window.is_some()),
        ["whatsapp", "instagram", "messenger"]
    );
}

#[test]
fn sendable_and_window_exempt_types_follow_the_tables() {
    use MessageType::*;
    assert_eq!(
        Channel::Whatsapp.rules().sendable_types(),
        [Text, Image, Video, Document, Audio, Note, Template]
    );
    assert_eq!(
        Channel::Sms.rules().sendable_types(),
        [Text, Image, Video, Audio, Note]
    );
    assert_eq!(
        Channel::Whatsapp.rules().allowed_outside_window(),
        [Note, Template]
    );
    assert_eq!(Channel::Messenger.rules().allowed_outside_window(), [Note]);
}

#[test]
fn mime_types_are_normalized() {
    assert_eq!(normalize_mime(" IMAGE/JPEG "), "image/jpeg");
    assert_eq!(normalize_mime("audio/ogg; codecs=opus"), "audio/ogg");
    assert_eq!(normalize_mime("image/jpg"), "image/jpeg");
    assert_eq!(normalize_mime("audio/mp3"), "audio/mpeg");
    assert_eq!(normalize_mime("audio/x-m4a"), "audio/mp4");
    assert_eq!(normalize_mime("video/avi"), "video/x-msvideo");
    assert_eq!(normalize_mime(""), "");
    let wa = Channel::Whatsapp;
    let image = wa.rules().media_rule(MessageType::Image).unwrap();
    let audio = wa.rules().media_rule(MessageType::Audio).unwrap();
    assert_eq!(check(wa, media_msg(image, "Image/JPG", 1)), Ok(()));
    assert_eq!(
        check(wa, media_msg(audio, "audio/ogg; codecs=opus", 1)),
        Ok(())
    );
    let ig = Channel::Instagram;
    let ig_audio = ig.rules().media_rule(MessageType::Audio).unwrap();
    assert_eq!(check(ig, media_msg(ig_audio, "audio/x-wav", 1)), Ok(()));
    assert_eq!(check(ig, media_msg(ig_audio, "audio/x-m4a", 1)), Ok(()));
}

// ----- per-channel edge cases, generated from the tables ---------------------

fn text_limit_edges(c: Channel) {
    let limit = text_limit(c);
    let at = "a".repeat(limit.max);
    assert_eq!(check(c, text_msg(&at)), Ok(()), "{c}: at the limit");
    let past = "a".repeat(limit.max + 1);
    assert_eq!(
        check(c, text_msg(&past)),
        Err(RuleViolation::TextLength {
            channel: c,
            message_type: MessageType::Text,
            unit: limit.unit,
            limit: limit.max,
            actual: limit.max + 1,
        }),
        "{c}: one past"
    );
    // The same edges with multi-byte text, counted in the channel's unit.
    let at = multibyte_of_len(limit.unit, limit.max);
    assert_eq!(
        check(c, text_msg(&at)),
        Ok(()),
        "{c}: multibyte at the limit"
    );
    let past = format!("{at}a");
    assert!(
        matches!(check(c, text_msg(&past)), Err(RuleViolation::TextLength { actual, .. }) if actual == limit.max + 1),
        "{c}: multibyte one past"
    );
    match limit.unit {
        // Fewer characters than the limit but more bytes: refused.
        TextUnit::Bytes => {
            let s = "€".repeat(limit.max / 3 + 1);
            assert!(s.chars().count() < limit.max && s.len() > limit.max);
            assert_eq!(
                check(c, text_msg(&s)),
                Err(RuleViolation::TextLength {
                    channel: c,
                    message_type: MessageType::Text,
                    unit: TextUnit::Bytes,
                    limit: limit.max,
                    actual: s.len(),
                }),
                "{c}: over in bytes"
            );
        }
        // As many characters as the limit, three bytes each: accepted.
        TextUnit::Chars => {
            let s = "€".repeat(limit.max);
            assert!(s.len() > limit.max);
            assert_eq!(check(c, text_msg(&s)), Ok(()), "{c}: chars, not bytes");
        }
    }
}

fn captions_are_text_limited(c: Channel) {
    let limit = text_limit(c);
    for rule in c.rules().media {
        let mime = rule.mime_types[0];
        let at = "a".repeat(limit.max);
        let past = "a".repeat(limit.max + 1);
        assert_eq!(
            check(c, media_msg(rule, mime, 1).with_text(&at)),
            Ok(()),
            "{c}"
        );
        assert_eq!(
            check(c, media_msg(rule, mime, 1).with_text(&past)),
            Err(RuleViolation::TextLength {
                channel: c,
                message_type: rule.message_type,
                unit: limit.unit,
                limit: limit.max,
                actual: limit.max + 1,
            }),
            "{c}"
        );
        // A caption is optional, an empty one too.
        assert_eq!(check(c, media_msg(rule, mime, 1).with_text("")), Ok(()));
    }
}

fn media_sizes_at_the_limit_and_one_past(c: Channel) {
    for rule in c.rules().media {
        for mime in rule.mime_types {
            assert_eq!(
                check(c, media_msg(rule, mime, rule.max_bytes)),
                Ok(()),
                "{c} {mime}: at the limit"
            );
            assert_eq!(
                check(c, media_msg(rule, mime, rule.max_bytes + 1)),
                Err(RuleViolation::MediaSize {
                    channel: c,
                    message_type: rule.message_type,
                    limit: rule.max_bytes,
                    actual: rule.max_bytes + 1,
                }),
                "{c} {mime}: one past"
            );
        }
    }
}

fn disallowed_mime_types_are_refused(c: Channel) {
    let rules = c.rules();
    for rule in rules.media {
        // Types nobody lists, and every type another media rule lists but this one does not.
        let mut foreign = vec!["image/bmp", "application/x-msdownload", "", "image"];
        for other in rules.media {
            foreign.extend(
                other
                    .mime_types
                    .iter()
                    .filter(|m| !rule.mime_types.contains(m)),
            );
        }
        for mime in foreign {
            assert_eq!(
                check(c, media_msg(rule, mime, 1)),
                Err(RuleViolation::MediaType {
                    channel: c,
                    message_type: rule.message_type,
                    allowed: rule.mime_types,
                    actual: mime.to_owned(),
                }),
                "{c} {:?} {mime}",
                rule.message_type
            );
        }
    }
}

fn media_types_without_a_rule_are_not_sendable(c: Channel) {
    let rules = c.rules();
    for t in MessageType::ALL.into_iter().filter(|t| t.is_media()) {
        let msg = OutgoingCheck::new(t)
            .with_media("application/pdf", 1)
            .with_last_inbound_at(recent());
        match rules.media_rule(t) {
            Some(_) => assert!(rules.can_send(t)),
            None => assert_eq!(
                check(c, msg),
                Err(RuleViolation::MessageTypeNotSendable {
                    channel: c,
                    message_type: t
                }),
                "{c} {t}"
            ),
        }
    }
}

fn uncomposable_types_are_refused(c: Channel) {
    for t in [
        MessageType::Reaction,
        MessageType::Activity,
        MessageType::Location,
    ] {
        let msg = OutgoingCheck::new(t)
            .with_text("👍")
            .with_last_inbound_at(recent());
        assert_eq!(
            check(c, msg),
            Err(RuleViolation::MessageTypeNotSendable {
                channel: c,
                message_type: t
            }),
            "{c} {t}"
        );
    }
}

fn content_is_required(c: Channel) {
    for text in [None, Some(""), Some("  \n\t")] {
        let mut msg = OutgoingCheck::new(MessageType::Text).with_last_inbound_at(recent());
        msg.text = text;
        assert_eq!(
            check(c, msg),
            Err(RuleViolation::TextRequired {
                channel: c,
                message_type: MessageType::Text
            }),
            "{c} {text:?}"
        );
    }
    assert_eq!(
        check(c, text_msg("hi").with_media("image/jpeg", 1)),
        Err(RuleViolation::MediaNotAllowed {
            channel: c,
            message_type: MessageType::Text
        }),
        "{c}"
    );
    for rule in c.rules().media {
        let msg = OutgoingCheck::new(rule.message_type)
            .with_text("caption")
            .with_last_inbound_at(recent());
        assert_eq!(
            check(c, msg),
            Err(RuleViolation::MediaRequired {
                channel: c,
                message_type: rule.message_type
            }),
            "{c}"
        );
    }
}

fn window_edges(c: Channel) {
    let rules = c.rules();
    let inside = text_msg("hi").with_last_inbound_at(ago(23 * HOUR + 59));
    let outside = text_msg("hi").with_last_inbound_at(ago(24 * HOUR + 1));
    let exactly = text_msg("hi").with_last_inbound_at(ago(24 * HOUR));
    let never = OutgoingCheck::new(MessageType::Text).with_text("hi");
    let future = text_msg("hi").with_last_inbound_at(now() + TimeDelta::minutes(1));
    let image_rule = rules.media_rule(MessageType::Image).unwrap();
    let image_outside =
        media_msg(image_rule, image_rule.mime_types[0], 1).with_last_inbound_at(ago(24 * HOUR + 1));
    assert_eq!(check(c, inside), Ok(()), "{c}: 23h59m");
    assert_eq!(check(c, future), Ok(()), "{c}: clock skew");
    match rules.window {
        None => {
            for msg in [outside, exactly, never, image_outside] {
                assert_eq!(check(c, msg), Ok(()), "{c}: no window");
            }
            let long_ago = text_msg("hi").with_last_inbound_at(ago(400 * DAY));
            assert_eq!(check(c, long_ago), Ok(()), "{c}: no window");
        }
        Some(w) => {
            for msg in [outside, exactly, never, image_outside] {
                assert_eq!(
                    check(c, msg),
                    Err(RuleViolation::CustomerServiceWindow {
                        channel: c,
                        last_inbound_at: msg.last_inbound_at,
                        window_hours: w.hours,
                        allowed_message_types: rules.allowed_outside_window(),
                        human_agent: w.human_agent,
                        human_agent_requested: false,
                    }),
                    "{c}: {:?}",
                    msg.last_inbound_at
                );
            }
        }
    }
}

fn notes_pass_outside_the_window(c: Channel) {
    for last in [None, Some(ago(24 * HOUR + 1)), Some(ago(400 * DAY))] {
        let mut note = OutgoingCheck::new(MessageType::Note).with_text("called, no answer");
        note.last_inbound_at = last;
        assert_eq!(check(c, note), Ok(()), "{c} {last:?}");
        // The tag means nothing for a note: ignored, even where unsupported.
        assert_eq!(check(c, note.with_human_agent()), Ok(()), "{c} {last:?}");
    }
}

fn notes_have_their_own_limit(c: Channel) {
    let note = |t| OutgoingCheck::new(MessageType::Note).with_text(t);
    let max = NOTE_TEXT_LIMIT.max;
    // Above every channel's own limit, still a valid note.
    assert!(text_limit(c).max <= max);
    let at = "é".repeat(max);
    let past = "a".repeat(max + 1);
    assert_eq!(check(c, note(&at)), Ok(()), "{c}");
    assert_eq!(
        check(c, note(&past)),
        Err(RuleViolation::TextLength {
            channel: c,
            message_type: MessageType::Note,
            unit: TextUnit::Chars,
            limit: max,
            actual: max + 1,
        }),
        "{c}"
    );
    assert_eq!(
        check(c, note(" ")),
        Err(RuleViolation::TextRequired {
            channel: c,
            message_type: MessageType::Note
        })
    );
    assert_eq!(
        check(c, note("see file").with_media("application/pdf", 1)),
        Err(RuleViolation::MediaNotAllowed {
            channel: c,
            message_type: MessageType::Note
        })
    );
}

fn templates_follow_the_table(c: Channel) {
    let template = |last: Option<DateTime<Utc>>| {
        let mut m = OutgoingCheck::new(MessageType::Template);
        m.last_inbound_at = last;
        m
    };
    for last in [
        None,
        Some(recent()),
        Some(ago(24 * HOUR + 1)),
        Some(ago(400 * DAY)),
    ] {
        let expected = if c.rules().templates {
            Ok(())
        } else {
            Err(RuleViolation::TemplatesUnsupported { channel: c })
        };
        assert_eq!(check(c, template(last)), expected, "{c} {last:?}");
    }
}

fn human_agent_follows_the_table(c: Channel) {
    let rules = c.rules();
    let tagged = |minutes| {
        text_msg("hi")
            .with_last_inbound_at(ago(minutes))
            .with_human_agent()
    };
    match rules.human_agent() {
        Some(h) => {
            let hours = i64::from(h.hours);
            assert_eq!(check(c, tagged(HOUR)), Ok(()), "{c}: inside 24 h");
            assert_eq!(check(c, tagged(2 * DAY)), Ok(()), "{c}: 2 days");
            assert_eq!(check(c, tagged(hours * HOUR - 1)), Ok(()), "{c}: 6d23h59m");
            for minutes in [hours * HOUR, hours * HOUR + 1] {
                assert_eq!(
                    check(c, tagged(minutes)),
                    Err(RuleViolation::CustomerServiceWindow {
                        channel: c,
                        last_inbound_at: Some(ago(minutes)),
                        window_hours: h.hours,
                        allowed_message_types: rules.allowed_outside_window(),
                        human_agent: Some(h),
                        human_agent_requested: true,
                    }),
                    "{c}: {minutes} minutes"
                );
            }
            let never = OutgoingCheck::new(MessageType::Text)
                .with_text("hi")
                .with_human_agent();
            assert!(check(c, never).is_err(), "{c}: never wrote");
            // Without the tag, two days is outside.
            let untagged = text_msg("hi").with_last_inbound_at(ago(2 * DAY));
            assert!(matches!(
                check(c, untagged),
                Err(RuleViolation::CustomerServiceWindow {
                    window_hours: 24,
                    ..
                })
            ));
        }
        None => {
            for minutes in [HOUR, 2 * DAY] {
                assert_eq!(
                    check(c, tagged(minutes)),
                    Err(RuleViolation::HumanAgentUnsupported { channel: c }),
                    "{c}"
                );
            }
            if rules.templates {
                let t = OutgoingCheck::new(MessageType::Template).with_human_agent();
                assert_eq!(
                    check(c, t),
                    Err(RuleViolation::HumanAgentUnsupported { channel: c })
                );
            }
        }
    }
}

/// One test module per channel, each running every generated edge case.
macro_rules! per_channel {
    ($($name:ident => $channel:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            const C: Channel = $channel;
            #[test] fn text_limit_edges() { super::text_limit_edges(C) }
            #[test] fn captions_are_text_limited() { super::captions_are_text_limited(C) }
            #[test] fn media_sizes_at_the_limit_and_one_past() { super::media_sizes_at_the_limit_and_one_past(C) }
            #[test] fn disallowed_mime_types_are_refused() { super::disallowed_mime_types_are_refused(C) }
            #[test] fn media_types_without_a_rule_are_not_sendable() { super::media_types_without_a_rule_are_not_sendable(C) }
            #[test] fn uncomposable_types_are_refused() { super::uncomposable_types_are_refused(C) }
            #[test] fn content_is_required() { super::content_is_required(C) }
            #[test] fn window_edges() { super::window_edges(C) }
            #[test] fn notes_pass_outside_the_window() { super::notes_pass_outside_the_window(C) }
            #[test] fn notes_have_their_own_limit() { super::notes_have_their_own_limit(C) }
            #[test] fn templates_follow_the_table() { super::templates_follow_the_table(C) }
            #[test] fn human_agent_follows_the_table() { super::human_agent_follows_the_table(C) }
        }
    )*};
}

per_channel! {
    whatsapp => Channel::Whatsapp,
    instagram => Channel::Instagram,
    messenger => Channel::Messenger,
    webchat => Channel::Webchat,
    sms => Channel::Sms,
    playground => Channel::Playground,
}

// ----- named cases from the brief --------------------------------------------

#[test]
fn instagram_counts_bytes_not_characters() {
    // 501 characters, 1,002 bytes.
    let s = "é".repeat(501);
    assert_eq!(
        check(Channel::Instagram, text_msg(&s)),
        Err(RuleViolation::TextLength {
            channel: Channel::Instagram,
            message_type: MessageType::Text,
            unit: TextUnit::Bytes,
            limit: 1_000,
            actual: 1_002,
        })
    );
    // 250 emoji are 1,000 bytes: accepted; one more is not.
    assert_eq!(
        check(Channel::Instagram, text_msg(&"😀".repeat(250))),
        Ok(())
    );
    assert!(check(Channel::Instagram, text_msg(&"😀".repeat(251))).is_err());
    // The same 501 characters are fine on Messenger (2,000 characters).
    assert_eq!(check(Channel::Messenger, text_msg(&s)), Ok(()));
}

#[test]
fn templates_only_on_whatsapp_even_outside_the_window() {
    let t = OutgoingCheck::new(MessageType::Template);
    assert_eq!(check(Channel::Whatsapp, t), Ok(()));
    for c in Channel::ALL.into_iter().filter(|c| *c != Channel::Whatsapp) {
        assert_eq!(
            check(c, t),
            Err(RuleViolation::TemplatesUnsupported { channel: c })
        );
    }
}

#[test]
fn human_agent_refused_on_whatsapp() {
    let msg = text_msg("hi").with_human_agent();
    let err = check(Channel::Whatsapp, msg).unwrap_err();
    assert_eq!(
        err,
        RuleViolation::HumanAgentUnsupported {
            channel: Channel::Whatsapp
        }
    );
    assert_eq!(
        err.to_data(),
        json!({"rule":"human_agent_unsupported","channel":"whatsapp",
               "supported_channels":["instagram","messenger"]})
    );
}

// ----- the 422 data and messages ---------------------------------------------

#[test]
fn window_violation_data() {
    let last = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let err = check(Channel::Whatsapp, text_msg("hi").with_last_inbound_at(last)).unwrap_err();
    assert_eq!(
        err.to_data(),
        json!({"rule":"customer_service_window","channel":"whatsapp",
               "last_inbound_at":"2026-11-20T10:00:00.000Z","window_hours":24,
               "allowed_message_types":["note","template"]})
    );
    assert_eq!(
        err.to_data().to_string(),
        r#"{"rule":"customer_service_window","channel":"whatsapp","last_inbound_at":"2026-11-20T10:00:00.000Z","window_hours":24,"allowed_message_types":["note","template"]}"#
    );
    assert_eq!(
        err.message(),
        "The 24-hour customer-service window on whatsapp is closed (the contact last wrote at \
         2026-11-20T10:00:00.000Z); only note and template messages can be sent."
    );

    let never = OutgoingCheck::new(MessageType::Text).with_text("hi");
    let err = check(Channel::Messenger, never).unwrap_err();
    assert_eq!(
        err.to_data(),
        json!({"rule":"customer_service_window","channel":"messenger",
               "last_inbound_at":null,"window_hours":24,"allowed_message_types":["note"],
               "human_agent":{"tag":"HUMAN_AGENT","window_hours":168,"requested":false}})
    );
    assert!(err.message().contains("has not written yet"));
    assert!(err.message().contains("HUMAN_AGENT within 168 hours"));

    let tagged = text_msg("hi")
        .with_last_inbound_at(ago(8 * DAY))
        .with_human_agent();
    let err = check(Channel::Instagram, tagged).unwrap_err();
    assert_eq!(err.to_data()["window_hours"], 168);
    assert_eq!(err.to_data()["human_agent"]["requested"], true);
    assert!(err.message().starts_with("The 168-hour"));
}

#[test]
fn size_type_and_length_violation_data() {
    let wa = Channel::Whatsapp;
    let image = wa.rules().media_rule(MessageType::Image).unwrap();
    let err = check(wa, media_msg(image, "image/png", 5_000_001)).unwrap_err();
    assert_eq!(
        err.to_data(),
        json!({"rule":"media_size","channel":"whatsapp","message_type":"image",
               "limit":5_000_000,"actual":5_000_001})
    );
    assert_eq!(
        err.message(),
        "The image file is 5000001 bytes; whatsapp allows at most 5000000 bytes (5 MB) for image messages."
    );

    let err = check(wa, media_msg(image, "image/bmp", 1)).unwrap_err();
    assert_eq!(
        err.to_data(),
        json!({"rule":"media_type","channel":"whatsapp","message_type":"image",
               "allowed":["image/jpeg","image/png"],"actual":"image/bmp"})
    );
    assert_eq!(
        err.message(),
        "whatsapp does not accept 'image/bmp' for image messages; allowed: image/jpeg, image/png."
    );

    let err = check(Channel::Instagram, text_msg(&"a".repeat(1_001))).unwrap_err();
    assert_eq!(
        err.to_data(),
        json!({"rule":"text_length","channel":"instagram","message_type":"text",
               "unit":"bytes","limit":1000,"actual":1001})
    );
    assert_eq!(
        err.message(),
        "The text is 1001 bytes; instagram allows at most 1000 bytes."
    );

    let note_text = "a".repeat(10_001);
    let note = OutgoingCheck::new(MessageType::Note).with_text(&note_text);
    let err = check(Channel::Sms, note).unwrap_err();
    assert_eq!(err.to_data()["unit"], "chars");
    assert_eq!(
        err.message(),
        "Notes are limited to 10000 characters; this one has 10001 (channel sms)."
    );
}

#[test]
fn other_violation_data() {
    let cases = [
        (
            RuleViolation::TemplatesUnsupported {
                channel: Channel::Sms,
            },
            json!({"rule":"templates_unsupported","channel":"sms","supported_channels":["whatsapp"]}),
        ),
        (
            RuleViolation::MessageTypeNotSendable {
                channel: Channel::Sms,
                message_type: MessageType::Document,
            },
            json!({"rule":"message_type_not_sendable","channel":"sms","message_type":"document",
                   "sendable_message_types":["text","image","video","audio","note"]}),
        ),
        (
            RuleViolation::TextRequired {
                channel: Channel::Webchat,
                message_type: MessageType::Text,
            },
            json!({"rule":"text_required","channel":"webchat","message_type":"text"}),
        ),
        (
            RuleViolation::MediaRequired {
                channel: Channel::Webchat,
                message_type: MessageType::Video,
            },
            json!({"rule":"media_required","channel":"webchat","message_type":"video"}),
        ),
        (
            RuleViolation::MediaNotAllowed {
                channel: Channel::Playground,
                message_type: MessageType::Note,
            },
            json!({"rule":"media_not_allowed","channel":"playground","message_type":"note"}),
        ),
    ];
    for (violation, data) in cases {
        assert_eq!(violation.to_data(), data);
        assert_eq!(violation.to_data()["rule"], violation.rule());
        assert!(!violation.message().is_empty());
        assert_eq!(violation.to_string(), violation.message());
    }
}
