//! A lossless, dictionary-based packing of `User-Agent` strings.
//!
//! A session keeps its client's user agent for the device list, and a typical browser's is
//! about 110 bytes — more than all of the session's other fields together. User agents are
//! built from a small vocabulary ("Mozilla/5.0 (", "AppleWebKit/537.36 (KHTML, like Gecko)",
//! " Safari/537.36", …), so replacing each known phrase by one byte packs a typical one into
//! about a tenth of its size. General-purpose compressors gain little on 110 bytes: they have
//! no shared dictionary.
//!
//! Format: a byte below 0x80 is itself; `0x80 + i` is phrase `i`; `0xFF b` is the literal byte
//! `b` (for any byte ≥ 0x80 of a non-ASCII agent). Every string round-trips exactly.

/// Phrases common in today's user agents. Append only: stored sessions refer to these by
/// position, so reordering or removing one would change how they unpack.
const PHRASES: &[&str] = &[
    "Mozilla/5.0 (",
    "Windows NT 10.0; Win64; x64",
    "Macintosh; Intel Mac OS X 10_15_7",
    "Macintosh; Intel Mac OS X ",
    "X11; Linux x86_64",
    "X11; Ubuntu; Linux x86_64",
    "Linux; Android ",
    "iPhone; CPU iPhone OS ",
    "iPad; CPU OS ",
    " like Mac OS X",
    ") AppleWebKit/537.36 (KHTML, like Gecko)",
    ") AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "AppleWebKit/",
    "(KHTML, like Gecko)",
    " Chrome/",
    " Safari/537.36",
    " Safari/605.1.15",
    " Safari/604.1",
    " Mobile Safari/537.36",
    " Mobile/15E148",
    " Version/",
    " Firefox/",
    " Gecko/20100101",
    "; rv:",
    " Edg/",
    " OPR/",
    " CriOS/",
    " FxiOS/",
    " SamsungBrowser/",
    ".0.0.0",
    "; K)",
    "; wv)",
    "okhttp/",
    "Dalvik/",
    "python-requests/",
    "curl/",
    "Windows NT ",
    "; Win64; x64",
    " Mobile",
    " Build/",
    "Safari/",
    "Chrome/",
    "Firefox/",
];

const PHRASE_BASE: u8 = 0x80;
const LITERAL: u8 = 0xFF;

/// Packs `agent`; [`unpack`] gives it back.
pub fn pack(agent: &str) -> Vec<u8> {
    let bytes = agent.as_bytes();
    let mut packed = Vec::with_capacity(bytes.len() / 2);
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let longest = PHRASES
            .iter()
            .enumerate()
            .filter(|(_, phrase)| rest.starts_with(phrase.as_bytes()))
            .max_by_key(|(_, phrase)| phrase.len());
        match longest {
            Some((index, phrase)) => {
                // PHRASES has fewer than 0x7F entries, checked by a test.
                packed.push(PHRASE_BASE + index as u8);
                at += phrase.len();
            }
            None => {
                let byte = rest[0];
                if byte >= PHRASE_BASE {
                    packed.push(LITERAL);
                }
                packed.push(byte);
                at += 1;
            }
        }
    }
    packed
}

/// Unpacks what [`pack`] made; `None` for bytes it cannot have made.
pub fn unpack(packed: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(packed.len() * 4);
    let mut iter = packed.iter();
    while let Some(&byte) = iter.next() {
        match byte {
            LITERAL => bytes.push(*iter.next()?),
            b if b >= PHRASE_BASE => bytes.extend_from_slice(PHRASES.get(usize::from(b - PHRASE_BASE))?.as_bytes()),
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_fit_below_the_literal_marker() {
        assert!(PHRASES.len() < usize::from(LITERAL - PHRASE_BASE));
    }

    #[test]
    fn common_agents_round_trip_and_shrink() {
        let agents = [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 \
             Safari/537.36 Edg/131.0.0.0",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 \
             Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
             Version/18.1 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
            "Mozilla/5.0 (Linux; Android 14; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile \
             Safari/537.36",
        ];
        for agent in agents {
            let packed = pack(agent);
            assert_eq!(unpack(&packed).as_deref(), Some(agent));
            assert!(packed.len() * 3 < agent.len(), "{agent}: {} bytes", packed.len());
        }
    }

    #[test]
    fn any_text_round_trips() {
        for agent in ["", "curl/8.5.0", "ünïcödé agent ✓", "\u{80}\u{ff} edge bytes", "Mozilla/5.0 (Mozilla/5.0 ("]
        {
            assert_eq!(unpack(&pack(agent)).as_deref(), Some(agent));
        }
    }

    #[test]
    fn bytes_pack_cannot_make_are_refused() {
        assert_eq!(unpack(&[LITERAL]), None);
        assert_eq!(unpack(&[0xFE]), None);
        assert_eq!(unpack(&[LITERAL, 0xC3]), None);
    }
}
