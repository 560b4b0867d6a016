//! Text prepared for speech: HTML removed, Markdown rendered to plain text.
//!
//! Rules (the phone integration's "optimize your dialog for voice"): tags are dropped
//! (block tags become a sentence break), the common entities are decoded, Markdown
//! emphasis/code/links/images/headings/lists/quotes become their plain text, and
//! whitespace is collapsed. A heading or list item without closing punctuation gets a
//! full stop so the synthesiser pauses there.

use std::sync::OnceLock;

use regex::Regex;

struct Patterns {
    block_tag: Regex,
    tag: Regex,
    image: Regex,
    link: Regex,
    strong: Regex,
    emphasis: Regex,
    strike: Regex,
    code: Regex,
    heading: Regex,
    quote: Regex,
    bullet: Regex,
    space: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).unwrap_or_else(|e| panic!("static regex {s}: {e}"));
        Patterns {
            block_tag: re(r"(?i)<\s*/?\s*(br|p|div|li|ul|ol|h[1-6]|tr|table)\b[^>]*>"),
            tag: re(r"</?[A-Za-z!][^<>]*>"),
            image: re(r"!\[([^\]]*)\]\([^)]*\)"),
            link: re(r"\[([^\]]+)\]\([^)]*\)"),
            strong: re(r"(\*\*|__)(.+?)(\*\*|__)"),
            emphasis: re(r"(^|[^\w*])[*_]([^*_\s][^*_]*?)[*_]($|[^\w*])"),
            strike: re(r"~~(.+?)~~"),
            code: re(r"`+([^`]*)`+"),
            heading: re(r"^\s{0,3}#{1,6}\s+"),
            quote: re(r"^\s*(>\s*)+"),
            bullet: re(r"^\s*([-*+])\s+"),
            space: re(r"[ \t\u{a0}]+"),
        }
    })
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &tail[1..e];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16)
                        .ok()
                        .and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            ch.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &tail[e + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes HTML tags and decodes entities.
pub fn strip_html(text: &str) -> String {
    let p = patterns();
    let t = p.block_tag.replace_all(text, "\n");
    let t = p.tag.replace_all(&t, "");
    decode_entities(&t)
}

/// Renders Markdown to plain text for speech.
pub fn markdown_to_plain(text: &str) -> String {
    let p = patterns();
    let mut parts: Vec<String> = Vec::new();
    let mut in_fence = false;
    for raw in text.lines() {
        let line = raw.trim_end();
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        let mut structural = false;
        let mut l = line.to_string();
        if !in_fence {
            if p.heading.is_match(&l) || p.bullet.is_match(&l) {
                structural = true;
            }
            // A horizontal rule is not read.
            let t = l.trim();
            if t.len() >= 3
                && t.chars()
                    .all(|c| c == '-' || c == '*' || c == '_' || c == ' ')
            {
                continue;
            }
            l = p.heading.replace(&l, "").into_owned();
            l = p.quote.replace(&l, "").into_owned();
            l = p.bullet.replace(&l, "").into_owned();
            l = p.image.replace_all(&l, "$1").into_owned();
            l = p.link.replace_all(&l, "$1").into_owned();
            l = p.code.replace_all(&l, "$1").into_owned();
            l = p.strong.replace_all(&l, "$2").into_owned();
            l = p.strike.replace_all(&l, "$1").into_owned();
            l = p.emphasis.replace_all(&l, "$1$2$3").into_owned();
        }
        let l = l.trim().to_string();
        if l.is_empty() {
            continue;
        }
        let ends = l.ends_with(['.', '!', '?', ':', ';', ',']);
        parts.push(if structural && !ends {
            format!("{l}.")
        } else {
            l
        });
    }
    parts.join(" ")
}

/// HTML removed, then Markdown rendered, then whitespace collapsed.
pub fn prepare_for_speech(text: &str) -> String {
    let no_html = strip_html(text);
    let plain = markdown_to_plain(&no_html);
    patterns().space.replace_all(&plain, " ").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_tags_removed_and_entities_decoded() {
        assert_eq!(
            prepare_for_speech("<p>Hello <b>there</b> &amp; welcome</p><br/>Bye &#33;"),
            "Hello there & welcome Bye !"
        );
        assert_eq!(prepare_for_speech("1 < 2 and a&b"), "1 < 2 and a&b");
    }

    #[test]
    fn markdown_rendered_plain() {
        let md = "# Your bill\n\nYou owe **twelve** dollars, see [the portal](https://x.example).\n\n- pay by *card*\n- pay by `bank`\n\n---\n> quoted";
        assert_eq!(
            prepare_for_speech(md),
            "Your bill. You owe twelve dollars, see the portal. pay by card. pay by bank. quoted"
        );
    }

    #[test]
    fn snake_case_words_survive() {
        assert_eq!(
            prepare_for_speech("use my_account_id now"),
            "use my_account_id now"
        );
    }
}
