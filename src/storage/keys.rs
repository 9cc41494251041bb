//! Where files live in the bucket (API-DECISIONS.md, Files) and what a file name
//! may be there. Pure: no I/O.
//!
//! `s3_key` = `org/{organization_id}/conversations/{conversation_id}/{unique}/{file name}`;
//! `s3_path` = `s3://{bucket}/{s3_key}`.

/// The most characters a stored file name keeps (its extension included).
pub const MAX_FILE_NAME_CHARS: usize = 150;
/// The most UTF-8 bytes a stored file name keeps (S3 keys hold 1,024).
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// The name of a file whose name sanitizes to nothing.
pub const FALLBACK_NAME: &str = "file";

/// The prefix of a conversation's files.
pub fn conversation_prefix(organization_id: i64, conversation_id: i64) -> String {
    format!("org/{organization_id}/conversations/{conversation_id}/")
}

/// The prefix of everything an organization stores.
pub fn organization_prefix(organization_id: i64) -> String {
    format!("org/{organization_id}/")
}

/// A new object key for `file_name` in a conversation: a unique segment, then the
/// sanitized name.
pub fn new_key(
    organization_id: i64,
    conversation_id: i64,
    unique: &str,
    file_name: &str,
) -> String {
    format!(
        "{}{unique}/{}",
        conversation_prefix(organization_id, conversation_id),
        sanitize_file_name(file_name)
    )
}

/// The object key of an `s3://{bucket}/{key}` path, and its bucket.
pub fn split_s3_path(path: &str) -> Option<(&str, &str)> {
    let (bucket, key) = path.strip_prefix("s3://")?.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

/// Whether `key` lies under `prefix` with no empty or `..` segment to escape it.
pub fn key_is_under(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..")
    })
}

/// The organization and conversation a file key names, if it has the conversation shape.
pub fn key_owner(key: &str) -> Option<(i64, i64)> {
    let rest = key.strip_prefix("org/")?;
    let (org, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("conversations/")?;
    let (conversation, rest) = rest.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    Some((org.parse().ok()?, conversation.parse().ok()?))
}

/// Characters S3 advises against in keys, and the path separators: each becomes `_`.
const REPLACED: &[char] = &[
    '/', '\\', '"', '<', '>', '|', '^', '{', '}', '[', ']', '%', '#', '~', '`', '?', '*', ':',
];

/// A file name safe as the last segment of a key: no path separators (a path keeps
/// its characters, as `_`), no control characters, no `..`, no leading dots or
/// spaces; Unicode kept; at most [`MAX_FILE_NAME_CHARS`] characters and
/// [`MAX_FILE_NAME_BYTES`] bytes, the extension kept when the stem is cut; never empty.
pub fn sanitize_file_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'))
        .map(|c| if REPLACED.contains(&c) { '_' } else { c })
        .collect();
    while out.contains("..") {
        out = out.replace("..", ".");
    }
    let out = out
        .trim_start_matches(['.', ' '])
        .trim_end_matches([' ', '.']);
    let out = if out.is_empty() { FALLBACK_NAME } else { out };
    cap(out)
}

/// Cuts the stem so the name fits both bounds, keeping a short extension.
fn cap(name: &str) -> String {
    let fits = |s: &str| s.chars().count() <= MAX_FILE_NAME_CHARS && s.len() <= MAX_FILE_NAME_BYTES;
    if fits(name) {
        return name.to_string();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 16 => (stem, Some(ext)),
        _ => (name, None),
    };
    let ext_chars = ext.map_or(0, |e| e.chars().count() + 1);
    let ext_bytes = ext.map_or(0, |e| e.len() + 1);
    let mut kept = String::new();
    for c in stem.chars() {
        if kept.chars().count() + 1 + ext_chars > MAX_FILE_NAME_CHARS
            || kept.len() + c.len_utf8() + ext_bytes > MAX_FILE_NAME_BYTES
        {
            break;
        }
        kept.push(c);
    }
    let kept = kept.trim_end_matches([' ', '.']);
    match ext {
        Some(ext) => format!("{kept}.{ext}"),
        None => kept.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_separators_controls_dots_and_keep_unicode() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "_._etc_passwd");
        assert_eq!(sanitize_file_name("..\\..\\win.ini"), "_._win.ini");
        assert_eq!(sanitize_file_name(".htaccess"), "htaccess");
        assert_eq!(sanitize_file_name("a\u{0}b\nc\u{7f}.png"), "abc.png");
        assert_eq!(
            sanitize_file_name("évier 東京 файл.pdf"),
            "évier 東京 файл.pdf"
        );
        assert_eq!(sanitize_file_name("a..b.txt"), "a.b.txt");
        assert_eq!(sanitize_file_name("..."), FALLBACK_NAME);
        assert_eq!(sanitize_file_name(""), FALLBACK_NAME);
        assert_eq!(sanitize_file_name("x\u{202e}gnp.exe"), "xgnp.exe");
        assert_eq!(sanitize_file_name("a?b#c%d.png"), "a_b_c_d.png");
        for name in ["/", "a/b", "..", "a/../b"] {
            let s = sanitize_file_name(name);
            assert!(
                !s.contains('/') && !s.contains("..") && !s.starts_with('.'),
                "{name} -> {s}"
            );
        }
    }

    #[test]
    fn long_names_are_capped_keeping_the_extension() {
        let long = format!("{}.jpeg", "a".repeat(500));
        let s = sanitize_file_name(&long);
        assert_eq!(s.chars().count(), MAX_FILE_NAME_CHARS);
        assert!(s.ends_with(".jpeg"));
        let wide = format!("{}.pdf", "東".repeat(200));
        let s = sanitize_file_name(&wide);
        assert!(s.len() <= MAX_FILE_NAME_BYTES && s.ends_with(".pdf"), "{s}");
        assert!(s.starts_with('東'));
    }

    #[test]
    fn keys_stay_under_their_prefix() {
        let p = conversation_prefix(1, 2);
        assert!(key_is_under("org/1/conversations/2/u/a.png", &p));
        assert!(!key_is_under("org/1/conversations/2/../3/a.png", &p));
        assert!(!key_is_under("org/1/conversations/2//a.png", &p));
        assert!(!key_is_under("org/1/conversations/22/a.png", &p));
        assert!(!key_is_under("org/1/conversations/2/", &p));
        assert_eq!(key_owner("org/1/conversations/2/u/a.png"), Some((1, 2)));
        assert_eq!(key_owner("org/1/other/2/u"), None);
        assert_eq!(split_s3_path("s3://b/org/1/x"), Some(("b", "org/1/x")));
        assert_eq!(split_s3_path("s3://b/"), None);
        assert_eq!(
            new_key(1, 2, "u", "../x.png"),
            "org/1/conversations/2/u/_x.png"
        );
    }
}
