//! Text normalisation before detection: hidden characters removed (and Unicode tag
//! characters decoded), confusable letters folded to ASCII, with a map from every byte of the
//! normalised text back to the original so evidence spans point into what the caller sent.

use serde::Serialize;

/// A run of invisible characters found in the original text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HiddenRun {
    /// Byte span in the original text.
    pub start: usize,
    pub end: usize,
    /// `tag` (Unicode tag characters, U+E0000..U+E007F), `zero_width`, `bidi` or `other`.
    pub kind: &'static str,
    /// The code points, escaped (`U+200B U+200C`).
    pub code_points: String,
    /// For tag characters: the ASCII text they encode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded: Option<String>,
}

/// Normalised text plus its mapping back to the original.
#[derive(Debug, Clone)]
pub struct Normalized {
    pub text: String,
    /// `map[i]` = original byte offset of normalised byte `i`; `map[len]` = original length.
    /// Empty when the text is unchanged (identity map).
    map: Vec<u32>,
    pub hidden: Vec<HiddenRun>,
}

impl Normalized {
    /// Original byte offset for a normalised byte offset.
    pub fn original_offset(&self, i: usize) -> usize {
        if self.map.is_empty() {
            i
        } else {
            self.map[i.min(self.map.len() - 1)] as usize
        }
    }

    /// Original span for a normalised span (end mapped to the end of the last char).
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        if self.map.is_empty() {
            return (start, end);
        }
        let s = self.original_offset(start);
        let e = if end == 0 {
            0
        } else {
            // end of the original char that produced byte end-1
            let last = self.original_offset(end - 1);
            let mut e = self.original_offset(end);
            if e <= last {
                e = last + 1;
            }
            e
        };
        (s, e.max(s))
    }
}

fn hidden_kind(c: char) -> Option<&'static str> {
    match c as u32 {
        0xE0000..=0xE007F => Some("tag"),
        0x200B..=0x200D | 0x2060..=0x2064 | 0xFEFF | 0x180E => Some("zero_width"),
        0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0x061C => Some("bidi"),
        0x00AD | 0x034F | 0x115F | 0x1160 | 0x3164 | 0xFFA0 | 0xFE00..=0xFE0F => Some("other"),
        _ => None,
    }
}

/// Folds a confusable or decorated character to ASCII, when it has an obvious reading.
pub fn fold_char(c: char) -> Option<char> {
    let cp = c as u32;

    match cp {
        // Fullwidth ASCII.
        0xFF01..=0xFF5E => char::from_u32(cp - 0xFEE0),
        // Mathematical alphanumeric letters: 13 Latin styles of 52 letters each.
        0x1D400..=0x1D6A3 => {
            let k = (cp - 0x1D400) % 52;
            char::from_u32(if k < 26 {
                'A' as u32 + k
            } else {
                'a' as u32 + k - 26
            })
        }
        // Mathematical digits.
        0x1D7CE..=0x1D7FF => char::from_u32('0' as u32 + (cp - 0x1D7CE) % 10),
        // Spaces.
        0x00A0 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 => Some(' '),
        _ => {
            let s = match c {
                // Cyrillic lookalikes
                'а' => 'a',
                'е' => 'e',
                'о' => 'o',
                'р' => 'p',
                'с' => 'c',
                'у' => 'y',
                'х' => 'x',
                'і' => 'i',
                'ј' => 'j',
                'ѕ' => 's',
                'ԁ' => 'd',
                'һ' => 'h',
                'ӏ' => 'l',
                'ԛ' => 'q',
                'ԝ' => 'w',
                'А' => 'A',
                'В' => 'B',
                'Е' => 'E',
                'К' => 'K',
                'М' => 'M',
                'Н' => 'H',
                'О' => 'O',
                'Р' => 'P',
                'С' => 'C',
                'Т' => 'T',
                'Х' => 'X',
                'І' => 'I',
                'Ј' => 'J',
                'Ѕ' => 'S',
                // Greek lookalikes
                'α' => 'a',
                'ο' => 'o',
                'ν' => 'v',
                'ι' => 'i',
                'κ' => 'k',
                'ρ' => 'p',
                'τ' => 't',
                'υ' => 'u',
                'Α' => 'A',
                'Β' => 'B',
                'Ε' => 'E',
                'Ζ' => 'Z',
                'Η' => 'H',
                'Ι' => 'I',
                'Κ' => 'K',
                'Μ' => 'M',
                'Ν' => 'N',
                'Ο' => 'O',
                'Ρ' => 'P',
                'Τ' => 'T',
                'Υ' => 'Y',
                'Χ' => 'X',
                // Latin letters with diacritics, and dotless i
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
                'è' | 'é' | 'ê' | 'ë' => 'e',
                'ì' | 'í' | 'î' | 'ï' | 'ı' => 'i',
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
                'ù' | 'ú' | 'û' | 'ü' => 'u',
                'ç' => 'c',
                'ñ' => 'n',
                'ý' | 'ÿ' => 'y',
                // Punctuation lookalikes
                '‘' | '’' | 'ʼ' => '\'',
                '“' | '”' => '"',
                '‐' | '‑' | '‒' | '–' | '—' => '-',
                _ => return None,
            };
            Some(s)
        }
    }
}

/// Normalises `text`. ASCII input is returned unchanged without allocating a map.
pub fn normalize(text: &str) -> Normalized {
    if text.is_ascii() {
        return Normalized {
            text: text.to_string(),
            map: Vec::new(),
            hidden: Vec::new(),
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut map: Vec<u32> = Vec::with_capacity(text.len() + 1);
    let mut hidden: Vec<HiddenRun> = Vec::new();
    let mut run: Option<HiddenRun> = None;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        if let Some(kind) = hidden_kind(c) {
            let cp = c as u32;
            let tag_char = if kind == "tag" && (0xE0020..=0xE007E).contains(&cp) {
                char::from_u32(cp - 0xE0000)
            } else {
                None
            };
            match &mut run {
                Some(r) if r.kind == kind && r.end == i => {
                    r.end = end;
                    r.code_points.push_str(&format!(" U+{cp:04X}"));
                    if let (Some(d), Some(t)) = (r.decoded.as_mut(), tag_char) {
                        d.push(t);
                    }
                }
                _ => {
                    if let Some(r) = run.take() {
                        hidden.push(r);
                    }
                    run = Some(HiddenRun {
                        start: i,
                        end,
                        kind,
                        code_points: format!("U+{cp:04X}"),
                        decoded: if kind == "tag" {
                            Some(tag_char.map(String::from).unwrap_or_default())
                        } else {
                            None
                        },
                    });
                }
            }
            // Tag characters carry text: put it into the normalised text so rules see it.
            if let Some(t) = tag_char {
                out.push(t);
                map.push(i as u32);
            }
            continue;
        }
        if let Some(r) = run.take() {
            hidden.push(r);
        }
        let f = fold_char(c).unwrap_or(c);
        let before = out.len();
        out.push(f);
        for _ in before..out.len() {
            map.push(i as u32);
        }
    }
    if let Some(r) = run.take() {
        hidden.push(r);
    }
    map.push(text.len() as u32);
    Normalized {
        text: out,
        map,
        hidden,
    }
}

/// Renders text for display with invisible characters made visible (`<U+200B>`).
pub fn visible(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        if hidden_kind(c).is_some() || (c.is_control() && c != '\n' && c != '\t') {
            s.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            s.push(c);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_identity() {
        let n = normalize("ignore previous");
        assert_eq!(n.text, "ignore previous");
        assert_eq!(n.original_span(0, 6), (0, 6));
        assert!(n.hidden.is_empty());
    }

    #[test]
    fn confusables_fold_and_spans_map_back() {
        let s = "x іgnоre y"; // Cyrillic і and о
        let n = normalize(s);
        assert_eq!(n.text, "x ignore y");
        let (a, b) = n.original_span(2, 8);
        assert_eq!(&s[a..b], "іgnоre");
    }

    #[test]
    fn tag_characters_are_decoded_and_inserted() {
        let hidden: String = "hi there"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let s = format!("ok{hidden}!");
        let n = normalize(&s);
        assert_eq!(n.text, "okhi there!");
        assert_eq!(n.hidden.len(), 1);
        assert_eq!(n.hidden[0].kind, "tag");
        assert_eq!(n.hidden[0].decoded.as_deref(), Some("hi there"));
        assert_eq!(&s[n.hidden[0].start..n.hidden[0].end], hidden);
    }

    #[test]
    fn zero_width_removed_and_reported() {
        let s = "ig\u{200B}nore\u{202E}x";
        let n = normalize(s);
        assert_eq!(n.text, "ignorex");
        let kinds: Vec<_> = n.hidden.iter().map(|h| h.kind).collect();
        assert_eq!(kinds, vec!["zero_width", "bidi"]);
        assert_eq!(visible(s), "ig<U+200B>nore<U+202E>x");
    }
}
