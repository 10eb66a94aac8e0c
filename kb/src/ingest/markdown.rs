//! Markdown: ATX (`## Title`) and setext (`Title` over `===`/`---`) headings nest into heading
//! paths; paragraphs split at blank lines. Inline markup is kept except emphasis markers and link
//! targets, which only add noise to the index.

use super::{Block, SectionBuilder};

pub(super) fn parse(text: &str) -> Vec<Block> {
    let mut builder = SectionBuilder::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut in_fence = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        i += 1;
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            builder.line(line);
            continue;
        }
        if let Some((level, title)) = atx_heading(trimmed) {
            builder.heading(level, &inline(title));
            continue;
        }
        // Setext: a text line underlined by === (level 1) or --- (level 2).
        if let Some(next) = lines.get(i).map(|l| l.trim()) {
            let underline = |c: char| next.len() >= 2 && next.chars().all(|x| x == c);
            if !trimmed.is_empty()
                && builder.current.is_empty()
                && (underline('=') || underline('-'))
            {
                builder.heading(if underline('=') { 1 } else { 2 }, &inline(trimmed));
                i += 1;
                continue;
            }
        }
        builder.line(&inline(line));
    }
    builder.finish()
}

fn atx_heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None; // "#hashtag" is text
    }
    Some((level, rest.trim().trim_end_matches('#').trim()))
}

/// Drops `**`/`__` emphasis and turns `[text](url)` into `text`.
fn inline(line: &str) -> String {
    let line = line.replace("**", "").replace("__", "");
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|e| close + e) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_nest_and_pop() {
        let md = "# Prices\n\nIntro.\n\n## Cleaning\n\nA **cleaning** is $95.\nSee [our list](https://x).\n\n# Hours\nSetext\n------\nText";
        let blocks = parse(md);
        let paths: Vec<Vec<String>> = blocks
            .iter()
            .map(|b| match b {
                Block::Section { heading_path, .. } => heading_path.clone(),
                Block::Faq { .. } => vec![],
            })
            .collect();
        assert_eq!(
            paths,
            vec![
                vec!["Prices".to_string()],
                vec!["Prices".into(), "Cleaning".into()],
                vec!["Hours".into(), "Setext".into()]
            ]
        );
        assert_eq!(
            blocks[1],
            Block::Section {
                heading_path: vec!["Prices".into(), "Cleaning".into()],
                paragraphs: vec!["A cleaning is $95.\nSee our list.".into()]
            }
        );
    }
}
