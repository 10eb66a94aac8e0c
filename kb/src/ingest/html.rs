//! HTML by a small tolerant scanner rather than a full HTML5 parser: business pages exported from
//! a CMS need only "drop scripts and styles, keep headings, break at block elements, decode
//! entities", and `html5ever` would double this crate's build time. Malformed markup degrades to
//! text, never to an error.

use super::{collapse_whitespace, Block, SectionBuilder};

/// Elements whose content is never text for a caller.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "head", "nav", "footer",
];
/// Elements that end a paragraph.
const BLOCK: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "main",
    "blockquote",
    "dd",
    "dt",
    "dl",
    "pre",
    "hr",
    "form",
    "aside",
    "figure",
    "figcaption",
    "address",
];

pub(super) fn parse(html: &str) -> Vec<Block> {
    let mut builder = SectionBuilder::default();
    let mut text = String::new();
    let mut heading: Option<(usize, String)> = None;
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            text.push_str(rest);
            break;
        };
        text.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            text.push_str(rest); // a stray '<' at the end
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            text.push('<');
            text.push_str(tag);
            text.push('>');
            continue;
        }
        if !closing && SKIPPED.contains(&name.as_str()) && !tag.ends_with('/') {
            let close = format!("</{name}");
            rest = find_ignore_case(rest, &close)
                .and_then(|at| rest[at..].find('>').map(|gt| &rest[at + gt + 1..]))
                .unwrap_or("");
            continue;
        }
        let heading_level = match name.as_bytes() {
            [b'h', d @ b'1'..=b'6'] => Some(usize::from(d - b'0')),
            _ => None,
        };
        if let Some(level) = heading_level {
            flush_text(&mut builder, &mut text, &mut heading);
            if closing {
                if let Some((level, title)) = heading.take() {
                    builder.heading(level, &title);
                }
            } else {
                heading = Some((level, String::new()));
            }
        } else if BLOCK.contains(&name.as_str()) {
            flush_text(&mut builder, &mut text, &mut heading);
            if name == "li" && !closing {
                text.push_str("- ");
            }
        } else if (name == "td" || name == "th") && !closing {
            // A row becomes `| cell | cell`, which chunking reads as a table row.
            text.push_str(" | ");
        }
    }
    flush_text(&mut builder, &mut text, &mut heading);
    if let Some((level, title)) = heading.take() {
        builder.heading(level, &title);
    }
    builder.finish()
}

/// Moves accumulated text into the open heading, or into the builder as a paragraph.
fn flush_text(
    builder: &mut SectionBuilder,
    text: &mut String,
    heading: &mut Option<(usize, String)>,
) {
    let decoded = collapse_whitespace(&decode_entities(text));
    text.clear();
    if decoded.is_empty() {
        return;
    }
    match heading {
        Some((_, title)) => {
            if !title.is_empty() {
                title.push(' ');
            }
            title.push_str(&decoded);
        }
        None => {
            builder.line(&decoded);
            builder.end_paragraph();
        }
    }
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let hay = haystack.as_bytes();
    let needle = needle.as_bytes();
    (0..hay.len().saturating_sub(needle.len() - 1))
        .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// Decodes the named entities business pages use and all numeric ones; unknown ones stay as typed.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // A byte search: the 12th byte may fall inside a character (`&` before CJK text).
        let end = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';');
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                "ndash" => Some('–'),
                "mdash" => Some('—'),
                "euro" => Some('€'),
                "pound" => Some('£'),
                "copy" => Some('©'),
                "rsquo" | "lsquo" => Some('\''),
                "rdquo" | "ldquo" => Some('"'),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ampersand_before_multibyte_text_is_kept() {
        assert_eq!(decode_entities("R&D 研究開発部門"), "R&D 研究開発部門");
        assert_eq!(decode_entities("&研究開発部門"), "&研究開発部門");
        assert_eq!(decode_entities("&amp;研究 &#x7814;"), "&研究 研");
    }

    #[test]
    fn strips_scripts_keeps_headings() {
        let html = r#"<html><head><title>x</title><style>p{}</style></head><body>
            <h1>Acme <em>Dental</em></h1><script>var a = "<p>no</p>";</script>
            <p>Fish &amp; chips&nbsp;&#8364;5</p><!-- hidden --><h2>Parking</h2><ul><li>Lot B</li><li>Street</li></ul>
            <p>Unclosed <b>bold"#;
        assert_eq!(
            parse(html),
            vec![
                Block::Section {
                    heading_path: vec!["Acme Dental".into()],
                    paragraphs: vec!["Fish & chips €5".into()]
                },
                Block::Section {
                    heading_path: vec!["Acme Dental".into(), "Parking".into()],
                    paragraphs: vec!["- Lot B".into(), "- Street".into(), "Unclosed bold".into()]
                },
            ]
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "<",
            "<<>>",
            "&",
            "&#xFFFFFFFF;",
            "<script",
            "<h1>unterminated",
            "é<é>é&é;",
        ] {
            let _ = parse(s);
        }
    }
}
