//! Prompt cleaning as Wan's tokenizer wrapper does with `clean='whitespace'`:
//! `ftfy.fix_text`, HTML unescaping twice, then every whitespace run → one space,
//! trimmed. Of ftfy's fixes, those that change tokens of ordinary prompts are
//! done here: HTML entities (when the text has no `<`), terminal colour codes,
//! control characters, curly quotes, NFC. Mojibake repair is not attempted; width
//! and ligature folding is left to the tokenizer's NFKC normaliser.
use tokenizers::NormalizedString;

/// The cleaned prompt the tokenizer sees.
pub fn clean(text: &str) -> String {
    // ftfy's "auto" HTML mode leaves text that may hold tags alone.
    let mut t = if text.contains('<') { text.to_string() } else { unescape(text) };
    t = remove_escapes(&t);
    t = t.chars().filter(|&c| !is_control(c)).map(uncurl).collect();
    let mut n = NormalizedString::from(t.as_str());
    n.nfc();
    let t = unescape(&unescape(n.get()));
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Characters ftfy's `remove_control_chars` drops (tabs and line breaks stay).
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}' | '\u{206a}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffc}' | '\u{e0000}'..='\u{e007f}')
}

fn uncurl(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        _ => c,
    }
}

/// Drops ANSI terminal escapes (`ESC [ digits/semicolons letter`).
fn remove_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("\u{1b}[") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let params = tail.find(|c: char| !(c.is_ascii_digit() || c == ';')).unwrap_or(tail.len());
        match tail[params..].chars().next() {
            Some(c) if c.is_ascii_alphabetic() => rest = &tail[params + 1..],
            _ => {
                out.push_str("\u{1b}[");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One pass of `html.unescape` for numeric references and the common named entities.
fn unescape(text: &str) -> String {
    const NAMED: &[(&str, &str)] = &[
        ("amp", "&"),
        ("lt", "<"),
        ("gt", ">"),
        ("quot", "\""),
        ("apos", "'"),
        ("nbsp", "\u{a0}"),
        ("ndash", "\u{2013}"),
        ("mdash", "\u{2014}"),
        ("hellip", "\u{2026}"),
        ("lsquo", "\u{2018}"),
        ("rsquo", "\u{2019}"),
        ("ldquo", "\u{201c}"),
        ("rdquo", "\u{201d}"),
        ("copy", "\u{a9}"),
        ("reg", "\u{ae}"),
        ("deg", "\u{b0}"),
        ("times", "\u{d7}"),
        ("eacute", "\u{e9}"),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let end = tail.find(';').filter(|&e| e <= 32);
        let decoded = end.and_then(|e| {
            let name = &tail[..e];
            let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse().ok()
            } else {
                return NAMED.iter().find(|(n, _)| *n == name).map(|(_, v)| (v.to_string(), e));
            };
            Some((code.and_then(char::from_u32).unwrap_or('\u{fffd}').to_string(), e))
        });
        match decoded {
            Some((s, e)) => {
                out.push_str(&s);
                rest = &tail[e + 1..];
            }
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn whitespace_runs_become_one_space() {
        assert_eq!(clean("  a cat\t\n on\u{3000}a  mat \u{a0}"), "a cat on a mat");
        assert_eq!(clean(""), "");
        assert_eq!(clean(" \n\t "), "");
    }

    #[test]
    fn ftfy_fixes_that_change_tokens() {
        assert_eq!(clean("\u{201c}Hi\u{201d} it\u{2019}s"), "\"Hi\" it's");
        assert_eq!(clean("fish &amp;amp; chips &#233;t&#xe9;"), "fish & chips été");
        assert_eq!(clean("\u{1b}[31mred\u{1b}[0m\u{7}"), "red");
        // NFC: e + combining acute → é.
        assert_eq!(clean("caf\u{65}\u{301}"), "caf\u{e9}");
        // Text that may hold tags keeps ftfy's pass off, Wan's two passes still run.
        assert_eq!(clean("<b> &amp;lt;"), "<b> <");
        assert_eq!(clean("AT&T & co;"), "AT&T & co;");
    }
}
