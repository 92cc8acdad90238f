//! C2SP tlog-tiles paths: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, where N
//! is written in groups of three digits, all but the last prefixed with `x`.

use super::Error;

pub const WIDTH: u64 = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TilePath {
    /// Entry bundle rather than hashes.
    pub entries: bool,
    pub level: u32,
    pub index: u64,
    /// 1..=256; below 256 only for the partial tile at the tree's right edge.
    pub width: u16,
}

fn index_from(segments: &[&str]) -> Option<u64> {
    let (last, rest) = segments.split_last()?;
    // Canonical form only: no leading x000 group.
    if rest.first() == Some(&"x000") {
        return None;
    }
    let mut digits = String::new();
    for s in rest {
        let d = s.strip_prefix('x')?;
        if d.len() != 3 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.push_str(d);
    }
    if last.len() != 3 || !last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.push_str(last);
    digits.parse().ok()
}

impl TilePath {
    /// Parses what follows `tile/` in a request path.
    pub fn parse(rest: &str) -> Option<TilePath> {
        let segments: Vec<&str> = rest.split('/').collect();
        let (first, mut tail) = segments.split_first()?;
        let (entries, level) = match *first {
            "entries" => (true, 0),
            l if !l.is_empty() && l.len() <= 2 && l.bytes().all(|b| b.is_ascii_digit()) => (false, l.parse().ok()?),
            _ => return None,
        };
        if level > 7 {
            return None;
        }
        let mut width = 256u16;
        let mut owned: Vec<&str>;
        if let [head @ .., p, w] = tail
            && let Some(stripped) = p.strip_suffix(".p")
        {
            // Decimal without leading zeros, 1..=255.
            width = w.parse::<u16>().ok().filter(|n| (1..256).contains(n) && n.to_string() == *w)?;
            owned = head.to_vec();
            owned.push(stripped);
            tail = &owned[..];
        }
        let index = index_from(tail)?;
        Some(TilePath { entries, level, index, width })
    }

    /// The path after `tile/` for this tile.
    pub fn path(&self) -> String {
        let mut n = format!("{:03}", self.index % 1000);
        let mut rest = self.index / 1000;
        while rest > 0 {
            n = format!("x{:03}/{n}", rest % 1000);
            rest /= 1000;
        }
        let head = if self.entries { "entries".to_string() } else { self.level.to_string() };
        if self.width == 256 { format!("{head}/{n}") } else { format!("{head}/{n}.p/{}", self.width) }
    }
}

/// How many hashes a tree of `size` entries has at tile level `level`.
pub fn stored_at_level(size: u64, level: u32) -> u64 {
    size.checked_shr(8 * level).unwrap_or(0)
}

/// A tile exists when its hashes do: full tiles once complete, partial ones up to the edge.
pub fn check_width(tile: &TilePath, available: u64) -> Result<(), Error> {
    let start = tile.index.saturating_mul(WIDTH);
    if start.saturating_add(u64::from(tile.width)) > available {
        return Err(Error::NotFound("no such tile in the tree"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for (text, tile) in [
            ("0/000", TilePath { entries: false, level: 0, index: 0, width: 256 }),
            ("1/x001/234", TilePath { entries: false, level: 1, index: 1234, width: 256 }),
            ("0/x001/x234/067.p/8", TilePath { entries: false, level: 0, index: 1_234_067, width: 8 }),
            ("entries/005.p/17", TilePath { entries: true, level: 0, index: 5, width: 17 }),
        ] {
            assert_eq!(TilePath::parse(text).as_ref(), Some(&tile), "{text}");
            assert_eq!(tile.path(), text);
        }
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [
            "",
            "0",
            "0/1",
            "0/0001",
            "0/x1/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/08",
            "9/000",
            "a/000",
            "0/000/",
            "entries/000.p/",
        ] {
            assert_eq!(TilePath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_canonical_indexes() {
        assert_eq!(TilePath::parse("0/x000/001"), None);
        assert_eq!(TilePath::parse("0/001").map(|t| t.index), Some(1));
    }

    #[test]
    fn availability() {
        let full = TilePath { entries: false, level: 0, index: 0, width: 256 };
        assert!(check_width(&full, 255).is_err());
        assert!(check_width(&full, 256).is_ok());
        let partial = TilePath { width: 10, ..full.clone() };
        assert!(check_width(&partial, 10).is_ok());
        assert!(check_width(&partial, 9).is_err());
        assert_eq!(stored_at_level(70_000, 1), 273);
        assert_eq!(stored_at_level(70_000, 2), 1);
    }
}
